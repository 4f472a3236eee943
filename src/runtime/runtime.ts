/**
 * The runtime: baton's composition root, the one file of src/runtime/ that builds adapters (the
 * AMQP broker, the ORM store, the management API) and the inspector server. It resolves the
 * options, builds the parts, each from what it needs, wires the machines' actors to them, and
 * returns the `Runtime` a host holds.
 *
 * The parts, one job each, are listed in README.md here.
 */
import type { InspectionEvent } from 'xstate';
import type { Runtime, RuntimeStatus } from '../api.ts';
import { createAmqpBroker } from '../adapters/amqp/broker.ts';
import { createManagementApi } from '../adapters/amqp/management-api.ts';
import { createOrmStore } from '../adapters/orm/store.ts';
import { createInspectorServer, type InspectorOptions } from '../inspector/server.ts';
import { limitedWarn } from '../log-limit.ts';
import type { Assignment, Broker, Store } from '../ports.ts';
import { AppliedAccounting } from './accounting.ts';
import { AlarmWatch } from './alarm-watch.ts';
import { AuditLog } from './audit-log.ts';
import { createAgentRegistry, createLeaseGranter, heartbeatHandler, probeActiveAgent } from './agents.ts';
import { AppliedLedger } from './applied-ledger.ts';
import { createCoordinator, type CoordinatorActor } from './coordinator-provided.ts';
import { Intake } from './dispatch.ts';
import { DeviceNotes, deviceState, deviceViews, heldLineOf, laneOf } from './devices.ts';
import { createDispatcher } from './dispatcher-provided.ts';
import { CatchUp } from './catch-up.ts';
import { Drains } from './drained.ts';
import { EpochHolders } from './epoch-holders.ts';
import { RuntimeEventEmitter } from './events.ts';
import { Handovers } from './handover.ts';
import { Inspection } from './inspection.ts';
import { Leadership } from './leadership.ts';
import { pendingRetry } from './line-orders.ts';
import { createLines } from './lines.ts';
import { Lifecycle } from './lifecycle.ts';
import { hookCoordinator, hookDispatcher } from './machine-hooks.ts';
import { Metrics } from './metrics.ts';
import { deadLetterAndDrainActions } from './operator-actions.ts';
import { resolveRuntimeOptions, type ConfigOptions, type RuntimeSetup } from './options.ts';
import { Parker } from './parker.ts';
import { ReceiptReader } from './receipt-reader.ts';
import { ReceiptTaker } from './receipts.ts';
import { remoteViews } from './remote-views.ts';
import { SeqAllocator } from './seq-allocator.ts';
import { SettledWriter } from './settled-writer.ts';
import { BrokerAlarm, runtimeStatus } from './status.ts';
import { StoreSlot } from './store-slot.ts';
import type { PhaseHook } from './switch-steps.ts';
import { Timers } from './timers.ts';
import { WatermarkWriter } from './watermarks.ts';

export type RuntimeOptions = ConfigOptions & {
  /** replaces the real adapters (tests and the deterministic simulation) */
  ports?: { broker?: Broker; store?: Store };
  /** receives xstate inspection events of every actor (the inspector uses it) */
  inspect?: (event: InspectionEvent) => void;
  /** called once each switch phase is persisted, before its step acts */
  onPhase?: PhaseHook;
  /** serve the live inspector page and /metrics (loopback by default; a token is required elsewhere) */
  inspector?: InspectorOptions;
  /** forward the same inspection events to Stately's inspector (WebSocket, e.g. ws://localhost:8080) */
  stately?: { url: string };
};

export function createRuntime(options: RuntimeOptions): Runtime {
  const { ports, inspect: userInspect, onPhase, inspector: inspectorOptions, stately, ...given } = options;
  const setup = resolveRuntimeOptions(given);
  const { cfg, clock, log } = setup;
  const events = new RuntimeEventEmitter();
  const { emit } = events;
  const metrics = new Metrics();
  const inspection = new Inspection(userInspect);
  const alarm = new BrokerAlarm(emit);
  const broker = ports?.broker ?? amqpBroker(setup, alarm.onBlocked);
  const slot = new StoreSlot(ports?.store, clock, cfg.databaseTimeout);
  const { store } = slot;
  const seqs = new SeqAllocator(store, cfg.seqBlockSize);
  const parker = new Parker(store, { batchSize: cfg.parkBatchSize, clock });
  // per seq: applied, dead-lettered or outstanding; applied(), lag and watermarks are read from it
  const ledger = new AppliedLedger();
  const marks = new WatermarkWriter({ store, emit, log, clock });
  // operator actions record their outcome here (the parts that carry them out are given it)
  const auditLog = new AuditLog({ store, clock, emit, log, state: () => state() });
  const notes = new DeviceNotes(setup);
  const lineState = (id: string) => deviceState(laneOf(lanes, id), ledger.lag(id), lines.orders.stored(id));
  const [drains, catchUp] = [new Drains({ ...setup, ledger, leadership: () => leadership, lineState }), new CatchUp({ ledger, lineState })];
  const accounting = new AppliedAccounting({ ledger, metrics, marks, clock, heldLine: (deviceId, seq, timeoutMs) => heldLine(deviceId, seq, timeoutMs), accounted: (id) => (drains.accounted(id), catchUp.accounted(id)) });
  const lines = createLines({ ...setup, store, broker, parker, ledger, accounting, audit: auditLog, resolved: (deviceId, seq) => emit('dead-letter.resolved', { deviceId, seq, kind: 'retried' }), state: () => state(), leadership: () => leadership, dispatcher: () => dispatcher, lane: (id) => laneOf(lanes, id) });
  const inspectorServer = inspectorOptions ? createInspectorServer({ ...inspectorOptions, clock, status: () => status(), devices: () => devices(), alarms: () => alarms.list(), actions: () => actions, metrics, logger: log.child({ actor: 'inspector' }) }) : null;
  if (inspectorServer) inspection.add((e) => inspectorServer.inspect(e));
  if (stately) inspection.forwardToStately(stately.url);

  // what parts built before them reach (called only once the runtime runs): the leadership, the
  // actors, the receipt reader, the runtime's state
  const leading = (): boolean => leadership.leading;
  const coordinatorActor = (): CoordinatorActor => coordinator;
  const readReceipts = (on: boolean) => reader.readReceipts(on);
  const state = (): RuntimeStatus['state'] => lifecycle.state;

  // who each epoch was granted to: receipts count only from that agent
  const holders = new EpochHolders();
  const granter = createLeaseGranter({ ...setup, broker, holders, ledger, leading, lines: lines.orders });
  const refused = limitedWarn(clock, log); // what the trust boundary keeps out, logged at most every 10 s per kind
  const registry = createAgentRegistry({ ...setup, store, inspect: inspection.inspect, emit, granter, coordinator: coordinatorActor });
  const leadership = new Leadership({ ...setup, store, ttlMs: cfg.leaderTtl, advertise: cfg.advertise, seqs, granter, readReceipts, emit, coordinator: coordinatorActor, dispatcher: () => dispatcher });
  const dispatcher = createDispatcher({ ...setup, broker, store, parker, accounting, leadership, metrics, replayBatchSize: cfg.replayBatchSize, inspect: inspection.inspect, lines: lines.orders, release: lines.release, chain: lines.chain, sent: catchUp.sent });
  hookDispatcher(dispatcher, { coordinator: coordinatorActor, emit, onSending: lines.release.onSending });
  const management = cfg.managementUrl ? createManagementApi(cfg.managementUrl) : null;
  const coordinator = createCoordinator({
    store: () => store, broker, registry, granter, management, clock, inspect: inspection.inspect, namespace: cfg.namespace, checkAgentLoopTime: cfg.checkAgentLoopTime, keyOf: setup.keyOf, leaseDuration: cfg.leaseDuration,
    logger: log.child({ actor: 'coordinator' }),
    term: () => leadership.currentTerm(), beforeLoad: (term) => lines.orders.load(term), caughtUp: catchUp.caughtUp,
    ...(onPhase ? { hook: onPhase } : {}),
  });
  hookCoordinator(coordinator, { ...setup, registry, granter, dispatcher, store, metrics, emit });

  const settled = new SettledWriter({ ledger, store, leadership, clock, deadlineMs: cfg.leaderTtl });
  const taker = new ReceiptTaker({ ...setup, refused, holders, ledger, accounting, settled, store, metrics, emit, notes, deadlineMs: cfg.leaderTtl, lines: lines.receipts, released: ({ agentId, epoch, incarnation }) => coordinator.send({ type: 'agent.released', agentId, epoch, incarnation }) });
  const handovers = new Handovers({ ...setup, coordinator: coordinatorActor, registry, leadership, audit: auditLog, refused });
  const reader = new ReceiptReader({ ...setup, store, broker, ledger, holders, accounting, onReceipt: taker.onReceipt, leading, running: () => state() === 'running' });
  // the per-device view: the active agent's lane reports, the ledger, what receipts told
  const activeAgent = () => coordinator.getSnapshot().context.assignment?.agentId ?? null;
  const lanes = { registry, activeAgent };
  const running = () => state() === 'running';
  const devices = deviceViews({ ...lanes, devices: cfg.devices, clock, ledger, notes, seqs, streams: () => (running() ? store.deviceStreams() : Promise.resolve([])), parked: () => (running() ? store.countParkedByDevice() : Promise.resolve({})), lines: lines.orders });
  const heldLine = heldLineOf({ ...lanes, lines: lines.orders });
  const alarms = new AlarmWatch({ ...setup, events, emit, metrics, leading, registry, activeAgent, ledger, store });
  const status = runtimeStatus({
    ...setup, state, coordinator, dispatcher, leadership, broker, alarm, store, registry, ledger, metrics, inspectorUrl: () => inspectorServer?.url() ?? null, alarms: alarms.list, audit: (o) => auditLog.list(o), deviceState: lineState,
  });
  const { fates, journal } = remoteViews({ ...setup, ledger, accounting, store, state, events, leadership: () => leadership, loaded: () => reader.settled() });
  const intake = new Intake({ ...setup, state, leadership, seqs, dispatcher, maxMessageBytes: cfg.maxMessageBytes });
  const lifecycle = new Lifecycle({
    ...setup,
    slot, store, broker, inspection, inspectorServer, dispatcher, coordinator, elector: leadership.elector, granter, registry, receipts: reader, intake, marks, drains, fates,
    openStore: () => createOrmStore({ databaseUrl: cfg.databaseUrl, logger: log.child({ actor: 'store' }) }),
    onHeartbeat: heartbeatHandler({ ...setup, refused, registry, granter, leading, notes, activeAgent: () => activeAgent(), lineChanged: (deviceId, agentId, line) => emit('device.line', { deviceId, agentId, line }), leaving: handovers.agentLeaving, activeLanes: (id, l) => lines.receipts.reported(id, l), reportsLines: reportsLinesOf(coordinator) }),
    probe: probeActiveAgent({ ...setup, coordinator: coordinatorActor, leading, granter, broker, registry }),
    timers: new Timers(clock, log), alarms,
  });
  const { start, stop, ready } = lifecycle;
  const actions = { alarms: alarms.list, audit: (opts?: { limit?: number }) => auditLog.list(opts), handover: handovers.request, ...deadLetterAndDrainActions({ ...setup, store, auditLog, drains, events, intake, state, leadership, retrying: (id, seq) => pendingRetry(lines.orders.order(id))?.seq === seq }), ...lines.actions };
  return { start, stop, dispatch: intake.dispatch, ready, applied: accounting.applied, fate: fates.fate, journal, leader: leadership.leaderAt, advertise: leadership.advertise, status, devices, metrics: () => metrics.text(), on: events.on, off: events.off, once: events.once, ...actions };
}

/** The runtime's AMQP broker (tests and the simulation give theirs in `ports`). */
function amqpBroker({ cfg, clock, log }: RuntimeSetup, onBlocked: (reason: string | null) => void): Broker {
  return createAmqpBroker({
    url: cfg.amqpUrl,
    namespace: cfg.namespace,
    queueType: cfg.queueType,
    maxUnconfirmed: cfg.maxUnconfirmed,
    connectAttempts: cfg.connectAttempts,
    reconnectInitialMs: 100,
    reconnectMaxMs: 5000,
    clock,
    logger: log.child({ actor: 'broker' }),
    connectionName: `baton runtime ${cfg.namespace}`,
    onBlocked,
  });
}

/**
 * Whose lane reports record the blocks they name: the active agent's and, while a switch runs, the old
 * agent's too: the receipt of its refusal may be taken late (a leader term that ended while it was
 * stored), after the new agent is granted.
 */
function reportsLinesOf(coordinator: { getSnapshot(): { context: { assignment: Assignment | null } } }) {
  return (id: string) => {
    const a = coordinator.getSnapshot().context.assignment;
    return a?.agentId === id || (a?.lock === 1 && a.previousAgent === id);
  };
}
