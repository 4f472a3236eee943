/**
 * The devices of the wide simulation, as an agent reaches them: quick by default (1-3 ms), with
 * faults per device for a while:
 * - `slow` (overloaded): three writes in ten are answered 503 (not applied), the others are taken
 *   on arrival; either answer comes after 1-6 s; past the agent's
 *   request deadline (5 s, the default `requestTimeoutMs`) the request is lost on the way and the
 *   agent sees a timeout (the device never saw it: no write is applied twice behind its back);
 * - `errors`: half the writes are answered 503 (transient, retried);
 * - `rejects`: a third of the writes are answered 422 (permanent: dead-lettered);
 * - `refusing` (the line operator's model, wide-line-operator.ts): the next new seq that arrives is refused
 *   (422), and so is every later write of that seq, until the operator fixes the device.
 * Every answer reaches the agent through its gate, so an answer can arrive after a pause (held)
 * or right after a resume. Each applied write is recorded with the host's call id it carries, the
 * agent that sent it and when (`writes`); each refusal with its seq and when (`refusals`); and
 * every request that reaches the device (whatever its answer) with the agent and epoch it came from.
 */
import type { DeviceModel } from '../../devices/model.ts';
import { createMemoryDeviceClient } from '../../adapters/memory/device.ts';
import type { DeviceClient, DeviceOutcome } from '../../ports.ts';
import type { Gate, World } from './world.ts';

export const REQUEST_TIMEOUT_MS = 5000;

export interface SimDevice {
  id: string;
  fences: boolean;
  model: DeviceModel;
  /** the host call id of each entry of `model.applied`, index for index */
  calls: number[];
  /** every write that reached the device: which agent sent it, under which epoch, when */
  attempts: Array<{ agent: string; epoch: number; at: number }>;
  slowUntil: number;
  errorsUntil: number;
  rejectsUntil: number;
  /** refuse the next new seq that arrives (then `refusing` names it) */
  refuseNext?: boolean;
  /** the seq refused until the operator fixes the device */
  refusing?: { seq: number; fixed: boolean } | null;
  /** each applied write: its seq, the agent process that sent it, when it was sent and applied (ms, and their world stamps) */
  writes?: Array<{ seq: number; agent: string; sentAt: number; sent: number; at: number; applied: number }>;
  /** called as each write reaches the device, before it is answered (the line operator's skip while a retry is on the wire) */
  onArrival?: ((seq: number) => void) | null;
  /** each refusal (a permanent answer): the seq, when (ms, and its world stamp) */
  refusals?: Array<{ seq: number; at: number; stamp: number }>;
}

const REFUSED = { kind: 'permanent', status: 422, reason: 'refused until the device is fixed', response: '{"error":"vlan 4095 is reserved"}' } as const;

/** `agent`: the agent process that sends (its id and incarnation), as `writes` records it */
export function simDeviceClient(devices: SimDevice[], gate: Gate, world: World, agent = gate.name): DeviceClient {
  const rnd = world.random;
  const byId = new Map(devices.map((d) => [d.id, d]));
  const memory = createMemoryDeviceClient(new Map(devices.map((d) => [d.id, d.model])));
  const reply = <T>(at: number, resolve: (v: T) => void, v: T) => world.at(at, () => gate.run(() => resolve(v)));
  return {
    send: (device, m, epoch) =>
      new Promise<DeviceOutcome>((resolve) => {
        const d = byId.get(device.id)!;
        const sentAt = world.now;
        const sent = world.stamp();
        const arrive = world.now + 1 + Math.floor(rnd() * 3);
        const slow = world.now < d.slowUntil;
        const answerAt = slow ? world.now + 1000 + Math.floor(rnd() * 5000) : arrive;
        if (slow && answerAt - world.now >= REQUEST_TIMEOUT_MS) {
          return void reply(world.now + REQUEST_TIMEOUT_MS, resolve, { kind: 'transient', status: null, reason: `no answer within ${REQUEST_TIMEOUT_MS} ms` } as DeviceOutcome);
        }
        world.at(arrive, () => {
          d.attempts.push({ agent: gate.name, epoch, at: world.now });
          d.onArrival?.(m.seq);
          let out: Promise<DeviceOutcome>;
          if (d.refuseNext && m.seq > (d.model.applied.at(-1)?.seq ?? 0)) [d.refuseNext, d.refusing] = [false, { seq: m.seq, fixed: false }];
          if (slow && rnd() < 0.3) {
            out = Promise.resolve({ kind: 'transient', status: 503, reason: 'overloaded' });
          } else if (d.refusing && !d.refusing.fixed && d.refusing.seq === m.seq) {
            out = Promise.resolve(REFUSED);
          } else if (world.now < d.rejectsUntil && rnd() < 0.33) {
            out = Promise.resolve({ kind: 'permanent', status: 422, reason: 'injected rejection', response: '{"error":"injected rejection"}' });
          } else if (world.now < d.errorsUntil && rnd() < 0.5) {
            out = Promise.resolve({ kind: 'transient', status: 503, reason: 'injected fault' });
          } else {
            const before = d.model.applied.length;
            out = memory.send(device, m, epoch);
            if (d.model.applied.length > before) {
              d.calls.push((m.body as { call: number }).call);
              d.writes?.push({ seq: m.seq, agent, sentAt, sent, at: world.now, applied: world.stamp() });
            }
          }
          void out.then((o) => {
            if (o.kind === 'permanent') d.refusals?.push({ seq: m.seq, at: world.now, stamp: world.stamp() });
            reply(Math.max(answerAt, world.now), resolve, o);
          });
        });
      }),
    watermark: (device) => new Promise((resolve) => world.at(world.now + 1, () => void memory.watermark(device).then((w) => gate.run(() => resolve(w))))),
    close: async () => {},
  };
}
