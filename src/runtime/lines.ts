/**
 * The device lines, wired: the line orders (line-orders.ts), the release of a freed line
 * (line-release.ts) on the replay chain the dispatcher shares, what receipts change in the orders
 * (line-receipts.ts) and the operator's actions on them (line-actions.ts). The composition root
 * hands its parts to the dispatcher, the lease granter, the coordinator's load, the receipts and
 * the per-device view.
 */
import type { Runtime, RuntimeStatus } from '../api.ts';
import type { Broker, DeadLetterStore, LineStore, ParkingStore } from '../ports.ts';
import type { LaneReport } from '../side-channel.ts';
import type { AppliedAccounting } from './accounting.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import type { AuditLog } from './audit-log.ts';
import type { DispatcherActor } from './dispatcher-provided.ts';
import type { Leadership } from './leadership.ts';
import { LineActions } from './line-actions.ts';
import { LineOrders } from './line-orders.ts';
import { LineReceipts } from './line-receipts.ts';
import { LineRelease } from './line-release.ts';
import type { RuntimeSetup } from './options.ts';
import type { Parker } from './parker.ts';
import { ReplayChain } from './replay-chain.ts';

export interface LinesDeps extends Pick<RuntimeSetup, 'cfg' | 'clock' | 'log' | 'deviceSet' | 'runtimeId' | 'streamK'> {
  store: LineStore & ParkingStore & DeadLetterStore;
  broker: Pick<Broker, 'publish'>;
  parker: Pick<Parker, 'flush' | 'replaying'>;
  ledger: Pick<AppliedLedger, 'retried'>;
  accounting: Pick<AppliedAccounting, 'outstanding' | 'accountFor'>;
  audit: Pick<AuditLog, 'record'>;
  /** a dead letter resolved `retried` by the receipt of its retry */
  resolved?(deviceId: string, seq: number): void;
  state(): RuntimeStatus['state'];
  /** built after the lines (reached once the runtime runs) */
  leadership(): Leadership;
  dispatcher(): DispatcherActor;
  /** how the active agent reports a device's line */
  lane(deviceId: string): LaneReport | null;
}

export interface Lines {
  orders: LineOrders;
  release: LineRelease;
  receipts: LineReceipts;
  chain: ReplayChain;
  actions: Pick<Runtime, 'pause' | 'resume' | 'unblock'>;
}

export function createLines(d: LinesDeps): Lines {
  const { cfg, clock, store } = d;
  const log = d.log.child({ actor: 'lines' });
  const chain = new ReplayChain();
  const orders = new LineOrders({ store, deviceSet: d.deviceSet, term: () => d.leadership().currentTerm(), clock, log, deadlineMs: cfg.leaderTtl });
  const release = new LineRelease({
    lines: orders, chain, store, broker: d.broker, parker: d.parker, accounting: d.accounting, clock, log, streamK: d.streamK,
    leadership: { whileThisTerm: () => d.leadership().whileThisTerm() },
    sendingTo: () => {
      const s = d.dispatcher().getSnapshot();
      return s.value === 'sending' ? s.context.target : null;
    },
    batchSize: cfg.replayBatchSize,
    retryDelayMs: 500,
  });
  orders.onRelease = (deviceId) => release.request(deviceId);
  const receipts = new LineReceipts({ lines: orders, deadLetters: store, ledger: d.ledger, accounting: d.accounting, clock, log, ...(d.resolved ? { resolved: d.resolved } : {}) });
  const leadership = { currentTerm: () => d.leadership().currentTerm(), leader: () => d.leadership().leader() };
  const actions = new LineActions({ lines: orders, leadership, runtimeId: d.runtimeId, state: d.state, deviceSet: d.deviceSet, audit: d.audit, deadLetters: store, clock, lane: d.lane });
  return { orders, release, receipts, chain, actions: { pause: actions.pause, resume: actions.resume, unblock: actions.unblock } };
}
