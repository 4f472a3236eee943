/**
 * The runtime: baton's composition root. Builds the ports from the config, provides the machines'
 * actions and actors with them, wires the actors together, and exposes `dispatch()`.
 */
import type { Dispatched, Runtime, RuntimeEvents, RuntimeStatus } from '../api.ts';
import { createActor, fromPromise, waitFor, type InspectionEvent } from 'xstate';
import type { Logger } from 'pino';
import { coordinatorMachine, type Assignment, type CheckVerdict, type Phase } from '../../machines/coordinator.machine.ts';
import { dispatcherMachine, type DispatchTarget } from '../../machines/dispatcher.machine.ts';
import type { AgentEmitted } from '../../machines/agent.machine.ts';
import { AgentRegistry, xstateClock } from './agent-registry.ts';
import { type AgentView } from '../api.ts';
import { AppliedLedger } from './applied-ledger.ts';
import { createAmqpBroker } from '../adapters/amqp/broker.ts';
import { topology } from '../topology.ts';
import { delay, systemClock, withDeadline } from '../clock.ts';
import { BatonError, isBatonError } from '../errors.ts';
import { createInspectorServer, type InspectorOptions, type InspectorServer } from '../inspector/server.ts';
import { LeaderElector } from './leader-elector.ts';
import { Metrics } from './metrics.ts';
import { EpochHolders } from './epoch-holders.ts';
import { limitedWarn } from '../log-limit.ts';
import { LeaseGranter } from './lease-granter.ts';
import { silentLogger } from '../logger.ts';
import { createManagementApi } from '../adapters/amqp/management-api.ts';
import { createOrmStore } from '../adapters/orm/store.ts';
import { Parker } from './parker.ts';
import type { Broker, Clock, DeviceConfig, DeviceStream, Store, Subscription, SwitchRecord } from '../ports.ts';
import { parseHeartbeat, parseReceipt, type AppliedRange } from '../side-channel.ts';
import { SeqAllocator } from './seq-allocator.ts';
import { StoreSlot } from './store-slot.ts';
import { Inspection } from './inspection.ts';
import { WatermarkWriter } from './watermarks.ts';
import { AppliedAccounting } from './accounting.ts';
import { switchSteps, type PhaseHook } from './switch-steps.ts';
import { resolveRuntimeOptions, type ConfigOptions } from './options.ts';
import { RuntimeEventEmitter } from './events.ts';
import { notLeader as notLeaderError, rejected, stopped } from './refusals.ts';
import { agentKey, seal, signMessage, streamKey, unseal } from '../trust.ts';
import { validateMessage, type ConfigMessage } from '../wire.ts';

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

/** how long an agent may take from a lease grant to consuming its queue again, ms */
const GRANT_TO_CONSUME_MS = 500;

export function createRuntime(options: RuntimeOptions): Runtime {
  const { ports, inspect: userInspect, onPhase, inspector: inspectorOptions, stately, ...given } = options;
  const { cfg, clock, runtimeId, log, keyOf, streamK, queueOf, deviceSet, allFence } = resolveRuntimeOptions(given);
  const events = new RuntimeEventEmitter();
  const emit = events.emit;
  let state: RuntimeStatus['state'] = 'created';
  const metrics = new Metrics();
  let inspectorServer: InspectorServer | null = null;
  const inspection = new Inspection(userInspect);
  const inspect = inspection.inspect;
  // dispatch() calls between validation and the dispatcher's mailbox (waiting for a seq block)
  let intake = 0;
  let intakeDrained: (() => void) | null = null;

  const broker: Broker =
    ports?.broker ??
    createAmqpBroker({
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
      onBlocked: (reason) => {
        brokerBlocked = reason;
        if (reason === null) emit('broker.unblocked', {});
        else emit('broker.blocked', { reason });
      },
    });
  let brokerBlocked: string | null = null;
  // the replay running now (or the last one), so the next waits for it
  let replayChain: Promise<unknown> = Promise.resolve();
  const slot = new StoreSlot(ports?.store, clock, cfg.databaseTimeout);
  const store = slot.store;
  const seqs = new SeqAllocator(store, cfg.seqBlockSize);
  const parker = new Parker(store, { batchSize: cfg.parkBatchSize, clock });
  const timers: Array<{ cancel(): void }> = [];
  const subscriptions: Array<{ cancel(): Promise<void> }> = [];
  // per seq: applied, dead-lettered or outstanding; applied(), lag and watermarks are read from it
  const ledger = new AppliedLedger();
  const marks = new WatermarkWriter({ store, emit, log });
  const accounting = new AppliedAccounting({ ledger, metrics, marks, clock });
  const { accountFor, outstanding, withdrawn } = accounting;

  if (inspectorOptions) {
    inspectorServer = createInspectorServer({ ...inspectorOptions, clock, status: () => runtimeStatus(), metrics, logger: log.child({ actor: 'inspector' }) });
    inspection.add((e) => inspectorServer!.inspect(e));
  }
  if (stately) inspection.forwardToStately(stately.url);

  // who each epoch was granted to: receipts count only from that agent
  const holders = new EpochHolders();
  const granter = new LeaseGranter({
    broker,
    clock,
    durationMs: cfg.leaseDuration,
    waitForOldLease: !allFence,
    mayGrant: () => elector.leading,
    seal: (g) => seal(keyOf(g.agentId), 'control', g.agentId, g),
    onTarget: (t) => holders.record(t.epoch, t.agentId),
  });
  granter.watermarks = () => ledger.watermarks();

  // what the trust boundary keeps out is logged at most every 10 s per kind
  const refused = limitedWarn(clock, log);

  const registry = new AgentRegistry({
    timings: { heartbeatTimeout: cfg.heartbeatTimeout, hungTimeout: cfg.hungTimeout, consumerGrace: cfg.consumerGrace },
    clock,
    store: { upsertAgent: (a) => store.upsertAgent(a) },
    logger: log,
    inspect,
    onEmitted: (e) => {
      const level = e.type === 'agent.alive' ? 'info' : 'warn';
      log[level]({ agentId: e.agentId, ...('reason' in e ? { reason: e.reason } : {}), ...('why' in e ? { why: e.why } : {}) }, e.type);
      emit(e.type, e as never);
      if (e.type === 'agent.alive') coordinator.send({ type: 'agent.healthy', agentId: e.agentId });
      if (e.type === 'agent.dead') coordinator.send({ type: 'agent.dead', agentId: e.agentId, reason: e.reason });
    },
    onRegistered: (agentId) => {
      log.info({ agentId }, 'agent registered');
      emit('agent.registered', { agentId });
      coordinator.send({ type: 'agent.healthy', agentId });
    },
    queueOf,
    maxAgents: cfg.maxAgents,
    forgetAfter: cfg.forgetAgentAfter,
    pinned: (): Array<string | null> => {
      const a: Assignment | null = coordinator.getSnapshot().context.assignment;
      return [a?.agentId ?? null, a?.previousAgent ?? null];
    },
    onForgotten: (agentId) => granter.forget(agentId),
  });

  // A publish goes out only while the leader term it was made in lasts: one held back by a dropped
  // connection (or a pause) and sent after the leadership moved would land in a queue the new
  // leader has already moved, after newer messages; it is refused instead (the host sends it again).
  const whileThisTerm = () => {
    const term = elector.currentTerm()?.epoch;
    return () => (term !== undefined && elector.currentTerm()?.epoch === term ? null : 'this runtime no longer leads');
  };

  const dispatcher = createActor(
    dispatcherMachine.provide({
      actions: {
        send: (_, { target, event }) => {
          const m = event.message;
          outstanding(m.deviceId, m.seq);
          broker.publish(target.queue, signMessage(streamK, m), { wanted: whileThisTerm() }).then(() => {
            metrics.onDispatched(m.deviceId);
            event.reply.resolve({ deviceId: m.deviceId, seq: m.seq });
          }, (err) => (withdrawn(m.deviceId, m.seq), event.reply.reject(err)));
        },
        park: (_, { event }) => {
          const m = event.message;
          // held in the mailbox when this runtime stopped leading (a pause in the replay's last
          // round): not stored yet, and no longer this runtime's to store
          const term = elector.currentTerm();
          if (!term) return event.reply.reject(notLeader());
          outstanding(m.deviceId, m.seq);
          const sameTerm = whileThisTerm();
          parker.park(m, term, () => sameTerm() === null).then(() => {
            metrics.onDispatched(m.deviceId);
            metrics.parked.inc();
            event.reply.resolve({ deviceId: m.deviceId, seq: m.seq });
          }, (err) => (withdrawn(m.deviceId, m.seq), event.reply.reject(err)));
        },
        refuse: (_, { event }) => event.reply.reject(stopped()),
      },
      actors: {
        // One replay at a time: a replay the machine left (a new target, a quiesce, a stop) finishes
        // the batch it is in and ends; the next one starts after it, so no row is sent twice.
        // A round sends the rows parked when it begins (the parks under way committed first): rows
        // parked while it runs are the next round's, so a round ends under any incoming load.
        replayParked: fromPromise(async ({ input, signal }: { input: { target: DispatchTarget }; signal: AbortSignal }): Promise<number> => {
          const run = replayChain.then(async () => {
            await parker.flush();
            let left = await store.countParked();
            for (let replayed = 0; ; ) {
              if (signal.aborted || left <= 0) return replayed;
              const rows = await store.fetchParked(Math.min(cfg.replayBatchSize, left));
              if (rows.length === 0) return replayed;
              // rows another leader parked are outstanding here from now on (those parked here already are)
              for (const r of rows) outstanding(r.message.deviceId, r.message.seq);
              const wanted = whileThisTerm();
              await Promise.all(rows.map((r) => broker.publish(input.target.queue, signMessage(streamK, r.message), { wanted })));
              await store.deleteParked(rows.map((r) => r.id));
              replayed += rows.length;
              left -= rows.length;
              log.info({ agentId: input.target.agentId, rows: rows.length }, 'parked messages replayed');
            }
          });
          replayChain = run.catch(() => {});
          return run;
        }),
        settle: fromPromise(async () => {
          await replayChain;
          await broker.settle();
          await parker.flush();
        }),
      },
    }),
    { input: {}, clock: xstateClock(clock), systemId: 'dispatcher', inspect },
  );
  dispatcher.on('dispatcher.quiesced', () => coordinator.send({ type: 'dispatcher.quiesced' }));
  dispatcher.on('dispatcher.replayed', ({ agentId, replayed }) => {
    emit('replay.completed', { agentId, replayed });
    coordinator.send({ type: 'dispatcher.replayed', replayed });
  });

  const coordinator = createActor(
    coordinatorMachine.provide({
      actors: switchSteps({
        store: () => store,
        broker,
        registry,
        granter,
        management: cfg.managementUrl ? createManagementApi(cfg.managementUrl) : null,
        clock,
        logger: log.child({ actor: 'coordinator' }),
        namespace: cfg.namespace,
        term: () => elector.currentTerm(),
        ...(onPhase ? { hook: onPhase } : {}),
      }),
      guards: {
        // a death the coordinator could not act on when it came (it followed, loaded, or switched)
        agentDead: (_, { agentId }) => registry.list().some((a) => a.agentId === agentId && a.state === 'dead'),
      },
    }),
    { input: { checkAgentLoopTime: cfg.checkAgentLoopTime }, clock: xstateClock(clock), systemId: 'coordinator', inspect },
  );

  coordinator.on('coordinator.active', ({ assignment }) => {
    registry.ensure(assignment.agentId).actor.send({ type: 'agent.activate' });
    granter.setTarget({ agentId: assignment.agentId, epoch: assignment.epoch });
    // the queue comes from the agent's id, whatever the row says
    dispatcher.send({ type: 'dispatcher.resume', target: { agentId: assignment.agentId, queue: queueOf(assignment.agentId), epoch: assignment.epoch } });
    log.info({ agentId: assignment.agentId, epoch: assignment.epoch }, 'sending to the active agent');
    emit('coordinator.active', { assignment });
  });
  coordinator.on('coordinator.quiesce', () => dispatcher.send({ type: 'dispatcher.quiesce' }));
  // An agent registered while the coordinator was looking (electing, choosing) was not seen by the
  // look, and its `agent.healthy` came before the coordinator waited for one: told again now.
  const healthyWhileLooking = () => {
    const first = registry.healthy()[0];
    if (first) coordinator.send({ type: 'agent.healthy', agentId: first.agentId });
  };
  coordinator.on('coordinator.awaiting', () => {
    log.info('no healthy agent yet: messages are parked in PostgreSQL until one heartbeats');
    emit('coordinator.awaiting', {});
    healthyWhileLooking();
  });
  coordinator.on('coordinator.checked', ({ assignment, result }) => {
    if (result.verdict === 'switch') log.error({ agentId: assignment.agentId, why: result.why }, 'the active agent failed the periodic check: switching');
    emit('check.completed', { assignment, result });
  });
  coordinator.on('switch.started', (e) => {
    metrics.switches.inc({ reason: /periodic check/.test(e.reason) ? 'periodic-check' : (/(killed|hung|no-consumer)$/.exec(e.reason)?.[1] ?? 'other') });
    registry.send(e.assignment.previousAgent!, { type: 'agent.deactivate' });
    emit('switch.started', { assignment: e.assignment, reason: e.reason });
  });
  coordinator.on('switch.phase', (e) => {
    emit('switch.phase', { assignment: e.assignment, phase: e.phase });
    if (e.phase === 'awaiting-candidate') healthyWhileLooking();
  });
  coordinator.on('switch.completed', ({ assignment }) => {
    log.warn({ switchId: assignment.switchId, agentId: assignment.agentId, epoch: assignment.epoch }, 'switch completed: back to normal');
    emit('switch.completed', { assignment });
    void store.listSwitches().then((all) => {
      const w = all.find((x) => x.id === assignment.switchId);
      const secs = (a: Date | null, b: Date | null) => (a && b ? (b.getTime() - a.getTime()) / 1000 : null);
      for (const [phase, v] of [['switching', secs(w?.startedAt ?? null, w?.drainingAt ?? null)], ['draining', secs(w?.drainingAt ?? null, w?.replayingAt ?? null)], ['replaying', secs(w?.replayingAt ?? null, w?.completedAt ?? null)]] as const) {
        if (v !== null) metrics.phaseSeconds.observe({ phase }, v);
      }
    }, () => {});
  });

  // What receipts taught is stored by one write at a time, for every device touched since the last
  // one: receipts arrive a hundred at once (prefetch), and as many upserts of the same rows would
  // queue on each other's row locks and take every pooled connection, the leadership renewal's too.
  // A receipt is acked once a write that began after it was read has committed. A hung query must not
  // hold receipts (unacked, out of the leader's reach) for good: each write has a deadline.
  const settledDirty = new Set<string>();
  let settledWaiters: Array<{ resolve(): void; reject(e: unknown): void }> = [];
  let settledWriting = false;
  let settledRev = 0;
  const writeSettled = () => {
    if (settledWriting || settledDirty.size === 0) return;
    settledWriting = true;
    const records = [...settledDirty].sort().map((d) => ledger.record(d));
    settledDirty.clear();
    const waiting = settledWaiters;
    settledWaiters = [];
    // in this leader term only: a former leader's late write must not replace its successor's record
    const term = elector.currentTerm();
    // each write of this runtime's records rises (the term first): one that outlived its deadline and
    // lands after a newer one keeps no ranges
    const write = term ? store.recordSettled(records, term, term.epoch * 2 ** 32 + ++settledRev) : Promise.reject(notLeader());
    withDeadline(clock, write, cfg.leaderTtl, 'storing receipts')
      .then(
        () => waiting.forEach((w) => w.resolve()),
        (err: unknown) => waiting.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        settledWriting = false;
        writeSettled();
      });
  };
  const storeSettled = (deviceIds: string[]) =>
    new Promise<void>((resolve, reject) => {
      for (const d of deviceIds) settledDirty.add(d);
      settledWaiters.push({ resolve, reject });
      writeSettled();
    });
  const onReceipt = async (p: unknown) => {
    const sealed = unseal(keyOf, 'receipts', p);
    if ('invalid' in sealed) return refused('receipt-unauthenticated', { why: sealed.invalid }, 'refused a receipt that no agent of this deployment signed');
    const r = parseReceipt(sealed.event);
    if ('invalid' in r) return log.warn({ why: r.invalid }, 'ignored a malformed receipt');
    // a dead letter that names no configured device (a message the agent could not read or
    // authenticate) settles nothing: it is only recorded, from any agent of this deployment
    const settles = r.type === 'applied' || deviceSet.has(r.entry.deviceId);
    if (settles && holders.holder(r.epoch) !== r.agentId) {
      return refused('receipt-not-holder', { agentId: r.agentId, epoch: r.epoch, holder: holders.holder(r.epoch) }, 'refused a receipt from an agent that does not hold (and never held) the epoch it names');
    }
    if (r.type === 'applied') {
      const touched = new Set<string>();
      const taken: AppliedRange[] = [];
      for (const g of r.ranges) {
        if (!deviceSet.has(g.deviceId)) {
          log.warn({ agentId: r.agentId, deviceId: g.deviceId }, 'ignored a receipt mark for a device not configured');
          continue;
        }
        // only seqs that were handed out: a receipt above names a seq nobody sent
        const top = Math.min(g.to, ledger.handedOut(g.deviceId));
        if (top < g.to) refused('receipt-not-handed-out', { agentId: r.agentId, deviceId: g.deviceId, from: Math.max(g.from, top + 1), to: g.to, handedOut: ledger.handedOut(g.deviceId) }, 'refused receipt seqs that were never handed out');
        if (top < g.from) continue;
        metrics.onApplied(g.deviceId, ledger.applied(g.deviceId, g.from, top));
        touched.add(g.deviceId);
        taken.push({ deviceId: g.deviceId, from: g.from, to: top });
      }
      for (const d of touched) accountFor(d);
      // stored before the receipt is acked: a leader that dies now leaves it in the queue for the next
      await storeSettled([...touched]);
      emit('receipts.applied', { agentId: r.agentId, ranges: taken });
      return;
    }
    const e = r.entry;
    if (settles && e.seq > ledger.handedOut(e.deviceId)) {
      return refused('receipt-not-handed-out', { agentId: r.agentId, deviceId: e.deviceId, seq: e.seq }, 'refused a dead letter for a seq that was never handed out');
    }
    // an anomaly is the agent's verdict from what it knows; a seq a receipt named applied is a redelivery after all
    if (r.anomaly && ledger.isApplied(e.deviceId, e.seq)) {
      return log.warn({ deviceId: e.deviceId, seq: e.seq, agentId: r.agentId }, 'an agent flagged a redelivered message as an anomaly, but a receipt said it was applied: not a dead letter');
    }
    await withDeadline(clock, store.deadLetter(e), cfg.leaderTtl, 'storing a dead letter');
    // a message that could not be read names no configured device: nothing to account for
    const accounted = deviceSet.has(e.deviceId);
    if (accounted) ledger.deadLettered(e.deviceId, e.seq);
    metrics.onDeadLettered(e.deviceId, r.anomaly);
    if (r.anomaly) {
      log.error({ deviceId: e.deviceId, seq: e.seq, agentId: r.agentId, reason: e.reason }, 'delivery anomaly: an agent got a message at or below the device watermark that nobody applied; dead-lettered');
      emit('delivery.anomaly', { deviceId: e.deviceId, seq: e.seq, reason: e.reason, agentId: r.agentId });
    } else log.error({ deviceId: e.deviceId, seq: e.seq, agentId: r.agentId, reason: e.reason }, 'message dead-lettered');
    emit('message.dead-lettered', { deviceId: e.deviceId, seq: e.seq, reason: e.reason, agentId: r.agentId });
    accounting.deadLettered(e.deviceId, e.seq, e.reason);
    if (accounted) {
      accountFor(e.deviceId);
      await storeSettled([e.deviceId]);
    }
  };

  // Receipts are read by the leader alone: a standby consuming the one durable receipts queue would
  // take a share of them (applied() of a dead letter timing out, watermarks lagging). The leader
  // subscribes when it wins, after reloading the watermarks the previous leader stored, and cancels
  // when it loses; the queue keeps what arrives meanwhile.
  let receiptReader: Promise<Subscription | null> = Promise.resolve(null);
  const readReceipts = (on: boolean) => {
    receiptReader = receiptReader.then(async (sub) => {
      if (!on || state !== 'running') {
        await sub?.cancel().catch((err: Error) => log.warn({ err: err.message }, 'could not cancel the receipts subscription'));
        return null;
      }
      if (sub) return sub;
      try {
        // what the previous leader knew settled, exactly: its stored watermark, the runs above it and its dead letters
        for (const r of await store.settledRecords()) ledger.load(r);
        // what was handed out before this term (a receipt above it names a seq nobody sent), and who held each epoch
        for (const d of await store.deviceStreams()) if (deviceSet.has(d.deviceId)) ledger.handedOutBefore(d.deviceId, d.nextSeq - 1);
        holders.load(await store.getAssignment(), await store.listSwitches());
        for (const e of await store.listDeadLetters()) if (deviceSet.has(e.deviceId)) ledger.deadLettered(e.deviceId, e.seq);
        for (const d of deviceSet) accountFor(d);
        return await broker.subscribeEvents('receipts', async (p) => {
          try {
            // a receipt delivered before this runtime stopped leading (a pause, say) is the leader's to read
            if (!elector.leading) throw new BatonError('not-leader', 'this runtime no longer leads: the receipt goes back to the queue for the leader');
            await onReceipt(p);
            // it was read while leading but stored after the leadership ended (a hung query): the next
            // leader may have loaded the stored state before this write, so it must read the receipt too
            if (!elector.leading) throw new BatonError('not-leader', 'this runtime stopped leading while it stored the receipt: it goes back to the queue for the leader');
          } catch (err) {
            // not stored: the receipt goes back to the queue, after a pause (no hot loop while the database is down)
            log.warn({ err: (err as Error).message }, 'could not take a receipt; it goes back to the queue in a second');
            await delay(clock, 1000);
            throw err;
          }
        });
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not read receipts yet; trying again in a second');
        clock.setTimeout(() => elector.leading && readReceipts(true), 1000);
        return null;
      }
    });
  };

  const elector = new LeaderElector({
    store: { acquireLeadership: (h, t, r) => store.acquireLeadership(h, t, r), releaseLeadership: (h) => store.releaseLeadership(h) },
    clock,
    logger: log,
    id: runtimeId,
    ttlMs: cfg.leaderTtl,
    onWon: (term) => {
      // before the coordinator acts: seqs come from this term's reservations, grants wait out the last term's leases
      seqs.beginTerm(term);
      granter.leaderWon(term);
      readReceipts(true);
      emit('leader.won', { runtimeId });
      coordinator.send({ type: 'leader.won' });
    },
    onLost: (holder) => {
      seqs.endTerm();
      granter.leaderLost();
      readReceipts(false);
      coordinator.send({ type: 'leader.lost' });
      dispatcher.send({ type: 'dispatcher.quiesce' });
      emit('leader.lost', { runtimeId, holder });
    },
  });

  const every = (ms: number, fn: () => Promise<void> | void) => {
    let handle: { cancel(): void } | null = null;
    let cancelled = false;
    const tick = () => {
      Promise.resolve()
        .then(fn)
        .catch((err) => log.debug({ err: (err as Error).message }, 'periodic task failed'))
        .finally(() => {
          if (!cancelled) handle = clock.setTimeout(tick, ms);
        });
    };
    handle = clock.setTimeout(tick, ms);
    timers.push({ cancel: () => ((cancelled = true), handle?.cancel()) });
  };

  async function runtimeStatus(): Promise<RuntimeStatus> {
    const assignment = coordinator.getSnapshot().context.assignment;
    const ready = state === 'running';
    // a blocked connection answers nothing until the alarm clears: status must not hang on it
    const queueDepth = ready && assignment && brokerBlocked === null ? ((await broker.queueInfo(queueOf(assignment.agentId)))?.messages ?? null) : null;
    const parked = ready ? await store.countParked() : 0;
    const agents = registry.list();
    metrics.queueDepth.set(queueDepth ?? 0);
    metrics.parkedNow.set(parked);
    metrics.epoch.set(assignment?.epoch ?? 0);
    metrics.leading.set(elector.leading ? 1 : 0);
    metrics.setAgentStates(agents);
    return {
      state,
      runtimeId,
      leader: elector.leader(),
      leading: elector.leading,
      coordinator: coordinator.getSnapshot().value,
      dispatcher: dispatcher.getSnapshot().value,
      assignment,
      agents,
      parked,
      queueDepth,
      devices: ready ? (await store.deviceStreams()).map((d) => ({ ...d, lag: ledger.lag(d.deviceId) })) : [],
      switches: ready ? await store.listSwitches() : [],
      inspectorUrl: inspectorServer?.url() ?? null,
      brokerBlocked,
    };
  }

  const notLeader = () => notLeaderError(runtimeId, elector.leader());

  async function dispatch(input: ConfigMessage): Promise<Dispatched> {
    if (state !== 'running') {
      throw state === 'created' || state === 'starting'
        ? new BatonError('runtime-not-started', 'dispatch() before start() finished; await runtime.start() first. The message was not stored')
        : stopped();
    }
    if (!elector.leading) throw notLeader();
    const m = validateMessage(input, (id) => deviceSet.has(id), cfg.maxMessageBytes);
    intake++;
    return new Promise<Dispatched>((resolve, reject) => {
      seqs.take(m.deviceId, (err, seq) => {
        if (--intake === 0) intakeDrained?.();
        if (isBatonError(err, 'not-leader')) return reject(notLeader());
        if (err) return reject(new BatonError('database-unavailable', `could not reserve a seq for device ${m.deviceId} (${err.message}); the message was not stored`, { deviceId: m.deviceId }, { cause: err }));
        // the term may have ended while the seq was reserved: a seq of an ended term is never sent
        if (!elector.leading) return reject(notLeader());
        if (dispatcher.getSnapshot().status !== 'active') return reject(stopped());
        dispatcher.send({ type: 'dispatch.message', message: { ...m, body: m.body ?? null, seq }, reply: { resolve, reject } });
      });
    });
  }

  return {
    async start() {
      if (state !== 'created') throw new BatonError('invalid-config', `start() called on a runtime that is ${state}`);
      state = 'starting';
      try {
        await slot.open(() => createOrmStore({ databaseUrl: cfg.databaseUrl, logger: log.child({ actor: 'store' }) }));
        await store.migrate();
        await broker.start();
      } catch (err) {
        state = 'stopped';
        await slot.closeQuietly();
        throw err;
      }
      subscriptions.push(
        await broker.subscribeEvents('heartbeats', (p) => {
          // only an agent of this deployment registers: a heartbeat is sealed with its own key
          const sealed = unseal(keyOf, 'heartbeats', p);
          if ('invalid' in sealed) return refused('heartbeat-unauthenticated', { why: sealed.invalid }, 'refused a heartbeat that no agent of this deployment signed');
          const h = parseHeartbeat(sealed.event);
          if ('invalid' in h) return log.warn({ why: h.invalid }, 'ignored a malformed heartbeat');
          const verdict = registry.heartbeat(h);
          if (verdict === 'replay') return refused('heartbeat-replay', { agentId: h.agentId, incarnation: h.incarnation, beat: h.beat }, 'ignored a replayed heartbeat (its beat is not above the last one heard from that agent process)');
          if (verdict === 'full') return refused('heartbeat-full', { agentId: h.agentId, maxAgents: cfg.maxAgents }, 'ignored the heartbeat of a new agent: maxAgents agents are known and none is dead to make room');
          if (elector.leading) granter.onHeartbeat(h);
        }),
      );
      await inspection.statelyLoaded(log);
      dispatcher.start();
      coordinator.start();
      state = 'running';
      if (inspectorServer) log.info({ url: await inspectorServer.start() }, 'inspector listening');
      await elector.start();
      every(200, marks.flush);
      every(Math.min(cfg.forgetAgentAfter, 10_000), () => void registry.forgetDead());
      every(cfg.probeInterval, async () => {
        const a = coordinator.getSnapshot().context.assignment;
        if (!a || !elector.leading) return;
        // an agent that gave its queue back when its lease lapsed (a leader change, a pause) consumes
        // again on its next grant: judge the consumer only once it had one and a moment to attach;
        // until then a dead agent is found by its missing heartbeats
        const granted = granter.grantedFor();
        if (granted === null || granted < GRANT_TO_CONSUME_MS) return;
        const info = await broker.queueInfo(queueOf(a.agentId));
        if (info) registry.send(a.agentId, { type: 'agent.probe', consumers: info.consumers });
      });
      log.info({ namespace: cfg.namespace, devices: cfg.devices.length, leading: elector.leading }, 'runtime started');
    },

    async stop() {
      if (state !== 'running') return;
      state = 'stopping';
      // messages already handed to dispatch() are accepted: wait for their seqs
      if (intake > 0) await new Promise<void>((resolve) => (intakeDrained = resolve));
      dispatcher.send({ type: 'dispatcher.stop' });
      await waitFor(dispatcher, (s) => s.status === 'done');
      coordinator.send({ type: 'coordinator.stop' });
      granter.stop();
      await elector.stop();
      for (const t of timers.splice(0)) t.cancel();
      readReceipts(false);
      await receiptReader;
      for (const s of subscriptions.splice(0)) await s.cancel();
      registry.stop();
      await inspectorServer?.stop();
      await marks.flush();
      await broker.close();
      await store.close();
      state = 'stopped';
      log.info('runtime stopped');
    },

    dispatch,

    async ready({ timeoutMs = 30_000 } = {}) {
      if (state !== 'running') throw new BatonError('runtime-not-started', 'ready() before start() finished; await runtime.start() first');
      try {
        await waitFor(dispatcher, (s) => s.matches('sending'), { timeout: timeoutMs });
      } catch {
        throw new BatonError(
          'no-active-agent',
          `no agent became active within ${timeoutMs} ms; messages dispatched meanwhile are parked. Start one: npx baton agent --id ID --devices FILE`,
        );
      }
      return coordinator.getSnapshot().context.assignment!;
    },

    applied: accounting.applied,

    status: runtimeStatus,

    metrics: () => metrics.text(),

    on: events.on,
    off: events.off,
    once: events.once,
  };
}
