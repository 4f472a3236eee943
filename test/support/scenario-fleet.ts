// The scenario runner's fleet of runtimes over fake child processes: IPC messages in and out,
// signals, and answers the test chooses.
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { RuntimeEvents } from '../../src/api.ts';
import { RuntimeFleet } from '../../src/tools/scenario/runtime-fleet.ts';
import type { FromRuntime, ToRuntime } from '../../src/tools/scenario/runtime-process.ts';
import type { RunPlace } from '../../src/tools/scenario/setup.ts';

/** A runtime process as the fleet sees it: IPC messages in and out, signals. */
export class FakeRuntime extends EventEmitter {
  readonly sent: ToRuntime[] = [];
  readonly signals: string[] = [];
  readonly stderr = { resume() {} };
  answer: (m: ToRuntime & { type: 'dispatch' }) => FromRuntime | null = (m) => ({ type: 'result', id: m.id, ok: true, deviceId: m.message.deviceId, seq: m.id });
  /** how it answers an operator action (null: never) */
  answerAction: (m: ToRuntime & { type: 'action' }) => FromRuntime | null = (m) => ({ type: 'action-result', id: m.id, ok: true, outcome: 'done', detail: `${m.action.do} done` });
  send(m: ToRuntime, cb?: (err: Error | null) => void) {
    this.sent.push(m);
    cb?.(null);
    const a = m.type === 'dispatch' ? this.answer(m) : m.type === 'action' ? this.answerAction(m) : null;
    if (a) queueMicrotask(() => this.emit('message', a));
    return true;
  }
  kill(sig: string) {
    this.signals.push(sig);
    queueMicrotask(() => (this.emit('disconnect'), this.emit('exit', null, sig)));
    return true;
  }
  tell(name: keyof RuntimeEvents, payload: unknown) {
    this.emit('message', { type: 'event', name, payload, at: 0 } satisfies FromRuntime);
  }
}

export const place: RunPlace = { amqpUrl: 'amqp://x', databaseUrl: 'postgres://x/db', managementUrl: undefined, namespace: 'ns', secret: 's', keyOf: (id) => `key-${id}` };

export function fleet() {
  const procs = new Map<string, FakeRuntime>();
  const f = new RuntimeFleet({
    place,
    devices: [{ id: 'fw1', fencesByEpoch: true }],
    spawn: (env) => {
      const p = new FakeRuntime();
      procs.set(JSON.parse(env.BATON_SCENARIO_RUNTIME!).runtimeId, p);
      return p as unknown as ChildProcess;
    },
  });
  const start = async (id: string) => {
    const started = f.start(id);
    procs.get(id)!.emit('message', { type: 'started', inspectorUrl: null });
    await started;
    return procs.get(id)!;
  };
  return { f, procs, start };
}

