/**
 * The in-memory database every role part of the memory store works on: one object holding what
 * the tables hold, and the helpers the parts share (the term check, a device's stream, copies).
 */
import { termOver } from '../../../errors.ts';
import type { AgentRecord, Assignment, AuditEntry, DeadLetterView, DeviceStream, IdempotencyRecord, LeaderTerm, ParkedRow, StoredLineOrder, SwitchRecord } from '../../../ports.ts';

export interface MemoryDb {
  /** the database clock (ms), for leadership expiry and switch stamps */
  now: () => number;
  /** `url`: what the holder advertised */
  leader: { holder: string; epoch: number; expiresAt: number; url: string | null } | null;
  assignment: Assignment | null;
  switches: SwitchRecord[];
  agents: Map<string, AgentRecord>;
  streams: Map<string, DeviceStream>;
  settled: Map<string, Array<[number, number]>>;
  settledRevs: Map<string, number>;
  parked: ParkedRow[];
  /** messages an ambiguous park was resolved as not storing (by device and seq) */
  refused: Set<string>;
  nextParkedId: number;
  /** in id order */
  deadLetters: DeadLetterView[];
  nextDeadLetterId: number;
  lines: Map<string, StoredLineOrder>;
  /** in id order */
  audit: AuditEntry[];
  nextAuditId: number;
  /** baton serve's idempotency keys, by key */
  idempotency: Map<string, IdempotencyRecord>;
}

export function memoryDb(now: () => number): MemoryDb {
  return {
    now,
    leader: null,
    assignment: null,
    switches: [],
    agents: new Map(),
    streams: new Map(),
    settled: new Map(),
    settledRevs: new Map(),
    idempotency: new Map(),
    parked: [],
    refused: new Set(),
    nextParkedId: 1,
    deadLetters: [],
    nextDeadLetterId: 1,
    lines: new Map(),
    audit: [],
    nextAuditId: 1,
  };
}

/** what a caller gets: never the stored object itself */
export const copy = <T>(v: T): T => structuredClone(v);

/** a device's stream, created on first use */
export function stream(db: MemoryDb, deviceId: string): DeviceStream {
  let s = db.streams.get(deviceId);
  if (!s) db.streams.set(deviceId, (s = { deviceId, nextSeq: 1, watermark: 0 }));
  return s;
}

/** the same condition as the SQL statements: this term holds the leadership row, unexpired */
export const holds = (db: MemoryDb, term: LeaderTerm) =>
  !!db.leader && db.leader.holder === term.holder && db.leader.epoch === term.epoch && db.leader.expiresAt >= db.now();

/** a leader-only write goes on only in its term, else `not-leader` (`what`: what was not done) */
export function inTerm(db: MemoryDb, term: LeaderTerm, what: string): void {
  if (!holds(db, term)) throw termOver(what, term);
}
