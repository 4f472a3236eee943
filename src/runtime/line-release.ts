/**
 * The release of a device's line (after resume, skip or retry): its own replay, on the replay chain
 * the dispatcher's rounds use (never two at once). It publishes to the dispatcher's target, only
 * while the dispatcher is `sending`: first the retried message (if a retry is pending and this term
 * has not published it), then the line's parked rows, oldest first; and it lets the line flow in
 * the same tick in which it found no row left and no park of the device under way. Otherwise a row
 * parked in between would be stranded: the line would flow past it.
 *
 * When the dispatcher is not sending (a switch, a leadership change) the line stays being released;
 * its rows are not left out of the dispatcher's replay, which sends them, and every line being
 * released gets its own replay when the dispatcher sends again (`onSending`). Until a line flows its
 * new messages are parked, behind the rows being released.
 */
import type { Logger } from 'pino';
import type { DispatchTarget } from '../../machines/dispatcher.machine.ts';
import { BatonError } from '../errors.ts';
import type { Broker, Clock, DeadLetterStore, ParkingStore, WireMessage } from '../ports.ts';
import { signMessage } from '../trust.ts';
import { decodeMessage } from '../wire.ts';
import type { AppliedAccounting } from './accounting.ts';
import type { Leadership } from './leadership.ts';
import type { LineOrders } from './line-orders.ts';
import type { Parker } from './parker.ts';
import type { ReplayChain } from './replay-chain.ts';

export interface LineReleaseDeps {
  lines: Pick<LineOrders, 'isReleasing' | 'heldByOrder' | 'endRelease' | 'retryToPublish' | 'retryPublished' | 'releasingDevices'>;
  chain: ReplayChain;
  store: Pick<ParkingStore, 'fetchParked' | 'deleteParked'> & Pick<DeadLetterStore, 'findDeadLetter'>;
  broker: Pick<Broker, 'publish'>;
  parker: Pick<Parker, 'flush' | 'replaying'>;
  accounting: Pick<AppliedAccounting, 'outstanding'>;
  leadership: Pick<Leadership, 'whileThisTerm'>;
  /** the dispatcher's target while it is `sending`, else null */
  sendingTo(): DispatchTarget | null;
  streamK: Buffer;
  batchSize: number;
  /** after a failed release, the next try (ms) */
  retryDelayMs: number;
  clock: Clock;
  log: Logger;
}

interface Parks {
  /** parks of the device under way */
  pending: number;
  /** parks of the device begun since start */
  begun: number;
}

export class LineRelease {
  private readonly parks = new Map<string, Parks>();
  /** devices whose release is queued on the chain and has not begun */
  private readonly queued = new Set<string>();

  constructor(private readonly d: LineReleaseDeps) {}

  /** A park of the device's message began; `done` settles once it is committed or failed. */
  parking(deviceId: string, done: Promise<unknown>): void {
    let p = this.parks.get(deviceId);
    if (!p) this.parks.set(deviceId, (p = { pending: 0, begun: 0 }));
    p.pending++;
    p.begun++;
    const parks = p;
    void done.finally(() => parks.pending--).catch(() => {});
  }

  /** Queues the device's release (once: a release queued and not begun covers a second request). */
  request(deviceId: string): void {
    if (this.queued.has(deviceId)) return;
    this.queued.add(deviceId);
    this.d.chain
      .run(() => {
        this.queued.delete(deviceId);
        return this.release(deviceId);
      })
      .catch((err: Error) => {
        this.d.log.warn({ deviceId, err: err.message }, 'the release of a device line failed; it is tried again');
        this.d.clock.setTimeout(() => this.d.lines.isReleasing(deviceId) && this.request(deviceId), this.d.retryDelayMs);
      });
  }

  /** The dispatcher sends again: every line being released gets its replay. */
  readonly onSending = (): void => {
    for (const deviceId of this.d.lines.releasingDevices()) this.request(deviceId);
  };

  private async release(deviceId: string): Promise<void> {
    const { lines, store, broker, accounting, streamK } = this.d;
    const target = this.d.sendingTo();
    // not sending: the line stays being released until the dispatcher sends again (onSending)
    if (!target || !lines.isReleasing(deviceId)) return;
    const wanted = this.d.leadership.whileThisTerm();
    // the dispatcher still sends to the same target and no order holds the line again
    const goOn = () => {
      const now = this.d.sendingTo();
      if (lines.heldByOrder(deviceId)) lines.endRelease(deviceId); // the order holds it: the next release starts over
      return now !== null && now.agentId === target.agentId && now.epoch === target.epoch && lines.isReleasing(deviceId);
    };
    if (!goOn()) return;
    const retry = lines.retryToPublish(deviceId);
    if (retry) {
      const m = await this.retried(deviceId, retry.seq);
      if (!goOn()) return;
      if (m) await broker.publish(target.queue, signMessage(streamK, m), { wanted });
      lines.retryPublished(deviceId, retry.n);
      this.d.log.info({ deviceId, seq: retry.seq, n: retry.n, agentId: target.agentId }, 'the refused message was published again (an operator retries it)');
    }
    let replayed = 0;
    for (;;) {
      if (!goOn()) return;
      const before = { ...(this.parks.get(deviceId) ?? { pending: 0, begun: 0 }) };
      const rows = await store.fetchParked(this.d.batchSize, { deviceId });
      if (rows.length === 0) {
        const now = this.parks.get(deviceId) ?? { pending: 0, begun: 0 };
        // no park was under way when the fetch began and none began since: no row can have been missed
        if (before.pending === 0 && now.begun === before.begun && goOn()) {
          lines.endRelease(deviceId);
          this.d.log.info({ deviceId, replayed, agentId: target.agentId }, 'a device line was released: it flows again');
          return;
        }
        await this.d.parker.flush();
        continue;
      }
      if (!goOn()) return;
      // rows another leader parked are outstanding here from now on (those parked here already are)
      for (const r of rows) accounting.outstanding(r.message.deviceId, r.message.seq);
      this.d.parker.replaying([deviceId]);
      await Promise.all(rows.map((r) => broker.publish(target.queue, signMessage(streamK, r.message), { wanted })));
      await store.deleteParked(rows.map((r) => r.id));
      replayed += rows.length;
    }
  }

  /** The refused message of `seq`, from its dead letter (null, logged, when it is not stored any more). */
  private async retried(deviceId: string, seq: number): Promise<WireMessage | null> {
    const dead = await this.d.store.findDeadLetter(deviceId, seq);
    const decoded = dead ? decodeMessage(Buffer.from(dead.payload, 'utf8')) : null;
    const m = decoded && 'message' in decoded ? decoded.message : null;
    if (dead?.resolution?.kind === 'resent') {
      // resent (a new seq behind the block) while the retry was being ordered: both would apply it twice
      const err = new BatonError('dead-letter-settled', `device ${deviceId}: the refused message of seq ${seq} was resent by ${dead.resolution.by} as a new message while its retry was ordered, so it is not sent again as the retry; the agent holds the line at seq ${seq}: skip it (baton unblock ${deviceId} --skip), the resent copy goes then`, { deviceId, seq });
      this.d.log.error({ deviceId, seq, code: err.code }, err.message);
      return null;
    }
    if (m && m.deviceId === deviceId && m.seq === seq) return m;
    const err = new BatonError('unknown-dead-letter', `device ${deviceId}: the refused message of seq ${seq} is not stored${dead ? ' readably' : ''} any more, so it cannot be sent again; the agent holds the line at seq ${seq}: skip it (baton unblock ${deviceId} --skip) and dispatch the change again`, { deviceId, seq });
    this.d.log.error({ deviceId, seq, code: err.code }, err.message);
    return null;
  }
}
