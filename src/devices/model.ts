/**
 * What a network device does with a config write, apart from HTTP: resources with parents, the
 * applied log with seq and epoch, refusal of a lower epoch, the watermark, injected errors. The
 * HTTP simulator and the in-memory device client both answer through it.
 */
import { EventEmitter } from 'node:events';

/** One write the device accepted. */
export interface AppliedEntry {
  seq: number | null;
  epoch: number | null;
  method: string;
  path: string;
  at: number;
}

export interface DeviceAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const parentOf = (path: string): string | null => {
  const parts = path.split('/').filter(Boolean);
  return parts.length > 2 ? '/' + parts.slice(0, -2).join('/') : null;
};

export class DeviceModel {
  readonly resources = new Map<string, unknown>();
  readonly applied: AppliedEntry[] = [];
  /** emits `applied` (AppliedEntry) and `refused` ({ status, path, reason }) */
  readonly events = new EventEmitter();
  maxEpoch = 0;
  watermark = 0;
  fencedWrites = 0;
  /** share of writes answered with `errorStatus` (an injected fault) */
  errorRate = 0;
  errorStatus = 503;
  /**
   * An injected permanent refusal: the next `left` writes are answered `status` (a 4xx), then writes
   * are accepted again, as when an operator fixed the device; with `match`, only writes whose path
   * contains it. Null: none.
   */
  refusing: { status: number; left: number; match?: string } | null = null;

  constructor(
    private readonly o: { random?: () => number; now?: () => number; fencing?: boolean } = {},
  ) {}

  private refuse(status: number, path: string, reason: string, headers?: Record<string, string>): DeviceAnswer {
    this.events.emit('refused', { status, path, reason });
    return { status, body: { error: reason }, ...(headers ? { headers } : {}) };
  }

  private refuseInjected(r: { status: number; left: number }, path: string): DeviceAnswer {
    if (--r.left <= 0) this.refusing = null;
    return this.refuse(r.status, path, `injected refusal (${r.left} more to come, then writes are accepted again)`);
  }

  /** Applies one write; `body` is the parsed JSON, or undefined when the request had none. */
  write(method: string, path: string, seq: number | null, epoch: number | null, body: unknown): DeviceAnswer {
    if (this.errorRate && (this.o.random ?? Math.random)() < this.errorRate) return this.refuse(this.errorStatus, path, 'injected fault');
    if (epoch !== null) {
      if (epoch < this.maxEpoch && this.o.fencing !== false) {
        this.fencedWrites++;
        return this.refuse(409, path, `epoch ${epoch} is below ${this.maxEpoch}`, { 'x-baton-fenced': 'true' });
      }
      this.maxEpoch = Math.max(this.maxEpoch, epoch);
    }
    // after the fence: a stale write is fenced as ever, and does not use up a refusal meant for the current writer
    if (this.refusing && path.includes(this.refusing.match ?? '')) return this.refuseInjected(this.refusing, path);
    const parts = path.split('/').filter(Boolean);
    if (parts.length === 0 || parts.length % 2 !== 0) return this.refuse(404, path, 'not a resource path (/kind/id[/kind/id...])');
    const parent = parentOf(path);
    const exists = this.resources.has(path);
    switch (method) {
      case 'PUT':
      case 'POST':
        if (parent && !this.resources.has(parent)) return this.refuse(422, path, `parent ${parent} does not exist`);
        if (method === 'POST' && exists) return this.refuse(409, path, 'already exists');
        this.resources.set(path, body ?? null);
        break;
      case 'PATCH':
        if (!exists) return this.refuse(404, path, 'does not exist');
        this.resources.set(path, { ...(this.resources.get(path) as object), ...(body as object) });
        break;
      case 'DELETE':
        if (!exists) return this.refuse(404, path, 'does not exist');
        for (const k of this.resources.keys()) if (k.startsWith(path + '/')) return this.refuse(409, path, `has children (${k})`);
        this.resources.delete(path);
        break;
      default:
        return this.refuse(405, path, `method ${method} not allowed`);
    }
    const entry: AppliedEntry = { seq, epoch, method, path, at: (this.o.now ?? Date.now)() };
    this.applied.push(entry);
    if (seq !== null && seq > this.watermark) this.watermark = seq;
    this.events.emit('applied', entry);
    return { status: method === 'POST' ? 201 : 200, body: { ok: true, seq } };
  }
}
