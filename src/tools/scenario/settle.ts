/**
 * Settling after the load: waits until every accepted message was applied by its device or
 * dead-lettered, as the devices (`applied`) and the runtimes (`message.dead-lettered`) report it, or
 * until the scenario's settleMs pass; then reads the dead letters and switches the checks judge.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { createOrmStore } from '../../adapters/orm/store.ts';
import type { DeviceSimulator } from '../../devices/simulator.ts';
import type { DeadLetterView, SwitchRecord } from '../../ports.ts';
import type { RuntimeFleet, RuntimeNews } from './runtime-fleet.ts';
import { pause, untilOrDeadline } from './wait.ts';

/** Dead letters the runtimes reported during the run, per device. Listen from the start: they come during the load. */
export class DeadLetterLog {
  readonly byDevice = new Map<string, Set<number>>();
  readonly events = new EventEmitter();

  constructor(runtimes: RuntimeFleet) {
    runtimes.events.on('event', ({ name, payload }: RuntimeNews) => {
      if (name !== 'message.dead-lettered') return;
      const deviceId = payload.deviceId as string;
      const seqs = this.byDevice.get(deviceId) ?? new Set<number>();
      this.byDevice.set(deviceId, seqs.add(payload.seq as number));
      this.events.emit('dead-lettered', deviceId, payload.seq as number);
    });
  }
}

/** Per device, the accepted seqs neither applied nor dead-lettered yet; kept up to date by the devices' and runtimes' events until `close`. */
export function outstanding(devices: Array<{ id: string; sim: DeviceSimulator }>, accepted: Map<string, number[]>, dead: DeadLetterLog) {
  const left = new Map<string, Set<number>>();
  let count = 0;
  const changed = new EventEmitter();
  const settle = (deviceId: string, seq: number | null) => {
    if (seq === null || !left.get(deviceId)?.delete(seq)) return;
    count--;
    changed.emit('change');
  };
  const listeners = devices.map(({ id, sim }) => {
    const has = new Set(sim.applied.map((e) => e.seq));
    const gone = dead.byDevice.get(id) ?? new Set();
    const seqs = new Set(accepted.get(id)!.filter((seq) => !has.has(seq) && !gone.has(seq)));
    left.set(id, seqs);
    count += seqs.size;
    const onApplied = (e: { seq: number | null }) => settle(id, e.seq);
    sim.events.on('applied', onApplied);
    return () => sim.events.off('applied', onApplied);
  });
  dead.events.on('dead-lettered', settle);
  const close = () => (listeners.forEach((off) => off()), dead.events.off('dead-lettered', settle));
  return { changed, settled: () => count === 0, close };
}

export async function settle(c: { devices: Array<{ id: string; sim: DeviceSimulator }>; accepted: Map<string, number[]>; dead: DeadLetterLog; databaseUrl: string; settleMs: number; logger: Logger; signal?: AbortSignal }): Promise<{ deadLetters: DeadLetterView[]; switches: SwitchRecord[] }> {
  const deadline = performance.now() + c.settleMs;
  const store = await createOrmStore({ databaseUrl: c.databaseUrl, logger: c.logger, createDatabase: false });
  const left = outstanding(c.devices, c.accepted, c.dead);
  // not a failure when it passes: the checks then count what is missing
  await untilOrDeadline(left.changed, 'change', left.settled, Math.max(0, deadline - performance.now()), c.signal).finally(left.close);
  // the dead letters as stored (an event lost with a runtime killed after storing one counts too); a
  // read the database refuses (it may be restarting) is tried again, until the deadline
  let deadLetters: DeadLetterView[] | null = null;
  for (;;) {
    deadLetters = await store.listDeadLetters({ limit: Number.MAX_SAFE_INTEGER }).catch(() => null); // every one, not the newest 1000
    if (deadLetters || performance.now() > deadline || c.signal?.aborted) break;
    await pause(250);
  }
  const switches: SwitchRecord[] = await store.listSwitches().catch(() => []);
  await store.close();
  return { deadLetters: deadLetters ?? [], switches };
}
