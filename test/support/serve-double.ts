// A Runtime double for baton serve's tests: dispatch() hands out seqs per device (or fails as told),
// the views answer fixed values, the actions record their arguments. Enough for app.inject().
import { afterEach } from 'vitest';
import type { ActionResult, Runtime } from '../../src/api.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { BatonError } from '../../src/errors.ts';
import { createServeApp, type ServeAppOptions } from '../../src/serve/app.ts';
import type { Clock } from '../../src/ports.ts';
import { validateMessage, type ConfigMessage } from '../../src/wire.ts';

/** A clock whose timers never fire (no purge or status push interleaves with a test). */
export const stillClock: Clock = { now: () => Date.now(), monotonic: () => performance.now(), setTimeout: () => ({ cancel() {} }) };

export function runtimeDouble(devices = ['fw1', 'fw2']) {
  const next = new Map<string, number>();
  const dispatched: ConfigMessage[] = [];
  const calls: Array<[string, unknown[]]> = [];
  /** the next dispatch() calls fail with these errors, in turn (null: it succeeds) */
  const failures: Array<Error | null> = [];
  const result = (action: ActionResult['action'], target: string): ActionResult => ({ action, target, outcome: 'done', detail: 'ok', auditId: 1 });
  const rec = <T>(name: string, answer: (...args: unknown[]) => T) => async (...args: unknown[]) => {
    calls.push([name, args]);
    return answer(...args);
  };
  const runtime = {
    async dispatch(m: ConfigMessage) {
      const fail = failures.shift();
      if (fail) throw fail;
      const msg = validateMessage(m, (id) => devices.includes(id), 1024 * 1024);
      const seq = (next.get(msg.deviceId) ?? 0) + 1;
      next.set(msg.deviceId, seq);
      dispatched.push(msg);
      return { deviceId: msg.deviceId, seq };
    },
    status: async () => ({ state: 'running', leading: true, agents: [{ agentId: 'a1' }], switches: [{ id: 's1' }] }),
    devices: async () => devices.map((deviceId) => ({ deviceId, state: 'idle' })),
    alarms: () => [{ id: 'no-healthy-agent', kind: 'no-healthy-agent' }],
    metrics: async () => 'baton_up 1\n',
    audit: rec('audit', () => []),
    deadLetters: rec('deadLetters', () => [{ id: 7 }]),
    deadLetter: rec('deadLetter', (id) => (id === 7 ? { id: 7 } : null)),
    pause: rec('pause', (d) => result('pause', d as string)),
    resume: rec('resume', (d) => result('resume', d as string)),
    unblock: rec('unblock', (d) => result('unblock-retry', d as string)),
    resendDeadLetter: rec('resendDeadLetter', () => ({ ...result('dead-letter-resend', 'dead-letter:7'), seq: 9 })),
    dropDeadLetter: rec('dropDeadLetter', () => result('dead-letter-drop', 'dead-letter:7')),
    handover: rec('handover', () => result('handover', 'a2')),
    drained: rec('drained', () => undefined),
    // no fate() nor journal here: those routes answer 501 unless a test passes its own ports
    leader: () => null,
    advertise: () => {},
  } as unknown as Runtime;
  return { runtime, dispatched, calls, failures };
}

export const notLeader = () => new BatonError('not-leader', 'runtime r2 does not lead (r1 does): nothing was done');

/** A serve app over a runtime double and an in-memory key store. */
export async function serveDouble(o: Partial<ServeAppOptions> = {}, devices?: string[], extend?: ServeAppOptions['extend']) {
  const double = runtimeDouble(devices);
  const keys = createMemoryStore();
  const serve = await createServeApp(double.runtime, { keys, clock: stillClock, ...o, ...(extend ? { extend } : {}) });
  const call = async (method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await serve.app.inject({ method, url, headers, ...(body !== undefined ? { payload: body as object } : {}) });
    let json: any = null;
    try {
      json = res.json();
    } catch {
      // not JSON (the docs page, the inspector's text)
    }
    return { status: res.statusCode, json, headers: res.headers, text: res.body };
  };
  return { ...double, keys, serve, call };
}

/** serveDouble for a test file: each app it makes is closed after its test. */
export function serveDoubles(): typeof serveDouble {
  const apps: Array<{ serve: { app: { close(): Promise<void> } } }> = [];
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.serve.app.close();
  });
  return async (...args) => {
    const s = await serveDouble(...args);
    apps.push(s);
    return s;
  };
}
