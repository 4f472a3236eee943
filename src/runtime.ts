/**
 * The runtime: baton's composition root. Builds the ports from the config, provides the machines'
 * actions and actors with them, wires the actors together, and exposes `dispatch()`.
 */
import { EventEmitter } from 'node:events';
import { createActor, fromPromise, waitFor, type InspectionEvent } from 'xstate';
import type { Logger } from 'pino';
import { coordinatorMachine, type Assignment, type CheckVerdict } from '../machines/coordinator.machine.ts';
import { dispatcherMachine, type DispatchTarget } from '../machines/dispatcher.machine.ts';
import type { AgentEmitted } from '../machines/agent.machine.ts';
import { AgentRegistry, xstateClock, type AgentView } from './agent-registry.ts';
import { createAmqpBroker } from './amqp-broker.ts';
import { systemClock } from './clock.ts';
import { fromEnv, resolveRuntimeConfig, type RuntimeConfig } from './config.ts';
import { BatonError } from './errors.ts';
import { silentLogger } from './logger.ts';
import { createOrmStore } from './orm-store.ts';
import { Parker } from './parker.ts';
import type { Broker, Clock, DeviceConfig, DeviceStream, Store } from './ports.ts';
import { parseHeartbeat, parseReceipt } from './receipts.ts';
import { SeqAllocator } from './seq-allocator.ts';
import { validateMessage, type ConfigMessage } from './wire.ts';

export type RuntimeOptions = Partial<Omit<RuntimeConfig, 'devices'>> & {
  devices: ReadonlyArray<string | DeviceConfig>;
  logger?: Logger;
  clock?: Clock;
  /** replaces the real adapters (tests and the deterministic simulation) */
  ports?: { broker?: Broker; store?: Store };
  /** receives xstate inspection events of every actor (the inspector uses it) */
  inspect?: (event: InspectionEvent) => void;
};

/** What `dispatch()` resolves with once the message is durable. */
export interface Dispatched {
  deviceId: string;
  seq: number;
  epoch: number;
}

export interface RuntimeStatus {
  state: 'created' | 'starting' | 'running' | 'stopping' | 'stopped';
  coordinator: unknown;
  dispatcher: unknown;
  assignment: Assignment | null;
  agents: AgentView[];
  parked: number;
  queueDepth: number | null;
  devices: DeviceStream[];
}

/** Events the runtime emits; tests and hosts await them instead of sleeping. */
export interface RuntimeEvents {
  'agent.registered': { agentId: string };
  'agent.suspect': Extract<AgentEmitted, { type: 'agent.suspect' }>;
  'agent.dead': Extract<AgentEmitted, { type: 'agent.dead' }>;
  'agent.alive': Extract<AgentEmitted, { type: 'agent.alive' }>;
  'coordinator.active': { assignment: Assignment };
  'coordinator.awaiting': Record<string, never>;
  'check.completed': { assignment: Assignment; result: CheckVerdict };
  'message.dead-lettered': { deviceId: string; seq: number; reason: string; agentId: string };
  'receipts.applied': { agentId: string; marks: Array<{ deviceId: string; seq: number }> };
  'replay.completed': { agentId: string; replayed: number };
  'watermarks.stored': { marks: Array<{ deviceId: string; seq: number }> };
}

export interface Runtime {
  start(): Promise<void>;
  /** graceful: refuses new messages, waits until every publish is confirmed and every park committed */
  stop(): Promise<void>;
  dispatch(message: ConfigMessage): Promise<Dispatched>;
  /** resolves once an agent is active and messages go straight to it (parked ones replayed) */
  ready(opts?: { timeoutMs?: number }): Promise<Assignment>;
  status(): Promise<RuntimeStatus>;
  on<K extends keyof RuntimeEvents>(event: K, listener: (e: RuntimeEvents[K]) => void): void;
  off<K extends keyof RuntimeEvents>(event: K, listener: (e: RuntimeEvents[K]) => void): void;
  once<K extends keyof RuntimeEvents>(event: K): Promise<RuntimeEvents[K]>;
}

export function createRuntime(options: RuntimeOptions): Runtime {
  const { logger, clock: givenClock, ports, inspect, ...rest } = options;
  const { logLevel: _ignored, ...envDefaults } = fromEnv();
  const cfg = resolveRuntimeConfig({ ...envDefaults, ...rest } as Record<string, unknown>);
  const clock = givenClock ?? systemClock;
  const log = (logger ?? silentLogger()).child({ actor: 'runtime' });
  const deviceSet = new Set(cfg.devices);
  const emitter = new EventEmitter();
  const emit = <K extends keyof RuntimeEvents>(k: K, e: RuntimeEvents[K]) => emitter.emit(k, e);
  let state: RuntimeStatus['state'] = 'created';
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
    });
  let store: Store = ports?.store as Store;
  let seqs: SeqAllocator;
  let parker: Parker;
  const timers: Array<{ cancel(): void }> = [];
  const subscriptions: Array<{ cancel(): Promise<void> }> = [];

  const registry = new AgentRegistry({
    timings: { heartbeatTimeout: cfg.heartbeatTimeout, hungTimeout: cfg.hungTimeout, consumerGrace: cfg.consumerGrace },
    clock,
    store: { upsertAgent: (a) => store.upsertAgent(a) },
    logger: log,
    ...(inspect ? { inspect } : {}),
    onEmitted: (e) => {
      const level = e.type === 'agent.alive' ? 'info' : 'warn';
      log[level]({ agentId: e.agentId, ...('reason' in e ? { reason: e.reason } : {}), ...('why' in e ? { why: e.why } : {}) }, e.type);
      emit(e.type, e as never);
      if (e.type === 'agent.alive') coordinator.send({ type: 'agent.healthy', agentId: e.agentId });
    },
    onRegistered: (agentId) => {
      log.info({ agentId }, 'agent registered');
      emit('agent.registered', { agentId });
      coordinator.send({ type: 'agent.healthy', agentId });
    },
  });

  const stopped = () => new BatonError('runtime-stopped', 'the runtime is stopping; the message was not stored: dispatch it to a running runtime');

  const dispatcher = createActor(
    dispatcherMachine.provide({
      actions: {
        send: (_, { target, event }) => {
          const m = { ...event.message, epoch: target.epoch };
          broker.publish(target.queue, m).then(() => event.reply.resolve({ deviceId: m.deviceId, seq: m.seq, epoch: m.epoch }), event.reply.reject);
        },
        park: (_, { event }) => {
          const m = event.message;
          parker.park(m).then(() => event.reply.resolve({ deviceId: m.deviceId, seq: m.seq, epoch: m.epoch }), event.reply.reject);
        },
        refuse: (_, { event }) => event.reply.reject(stopped()),
      },
      actors: {
        replayParked: fromPromise(async ({ input }: { input: { target: DispatchTarget } }): Promise<void> => {
          for (let replayed = 0; ; ) {
            await parker.flush();
            const rows = await store.fetchParked(cfg.replayBatchSize);
            if (rows.length === 0) {
              emit('replay.completed', { agentId: input.target.agentId, replayed });
              return;
            }
            replayed += rows.length;
            await Promise.all(rows.map((r) => broker.publish(input.target.queue, { ...r.message, epoch: input.target.epoch })));
            await store.deleteParked(rows.map((r) => r.id));
            log.info({ agentId: input.target.agentId, rows: rows.length }, 'parked messages replayed');
          }
        }),
        settle: fromPromise(async () => {
          await broker.settle();
          await parker.flush();
        }),
      },
    }),
    { input: {}, clock: xstateClock(clock), systemId: 'dispatcher', ...(inspect ? { inspect } : {}) },
  );

  const coordinator = createActor(
    coordinatorMachine.provide({
      actors: {
        loadAssignment: fromPromise(() => store.getAssignment()),
        electAgent: fromPromise(async () => {
          const candidate = registry.healthy()[0];
          if (!candidate) return null;
          await broker.assertAgentQueue(candidate.agentId);
          const won = await store.recordFirstAgent({ agentId: candidate.agentId, topic: candidate.topic, host: candidate.host });
          log.info({ agentId: won.agentId, epoch: won.epoch, chosen: won.agentId === candidate.agentId }, 'active agent recorded');
          return won;
        }),
        checkAgent: fromPromise(async ({ input }: { input: { assignment: Assignment } }): Promise<CheckVerdict> => {
          if (registry.healthy().some((a) => a.agentId === input.assignment.agentId)) return { verdict: 'healthy' };
          const fresh = await store.getAssignment();
          if (fresh?.lock === 1) return { verdict: 'working', why: 'switching' };
          const info = await broker.queueInfo(input.assignment.topic);
          if (info && info.consumers > 0) return { verdict: 'working', why: 'has-consumer' };
          return { verdict: 'switch', why: 'not heartbeating and no consumer on its queue' };
        }),
      },
    }),
    { input: { checkAgentLoopTime: cfg.checkAgentLoopTime }, clock: xstateClock(clock), systemId: 'coordinator', ...(inspect ? { inspect } : {}) },
  );

  coordinator.on('coordinator.active', ({ assignment }) => {
    registry.ensure(assignment.agentId, assignment.topic).actor.send({ type: 'agent.activate' });
    dispatcher.send({ type: 'dispatcher.resume', target: { agentId: assignment.agentId, queue: assignment.topic, epoch: assignment.epoch } });
    log.info({ agentId: assignment.agentId, epoch: assignment.epoch }, 'sending to the active agent');
    emit('coordinator.active', { assignment });
  });
  coordinator.on('coordinator.awaiting', () => {
    log.info('no healthy agent yet: messages are parked in PostgreSQL until one heartbeats');
    emit('coordinator.awaiting', {});
  });
  coordinator.on('coordinator.checked', ({ assignment, result }) => {
    if (result.verdict === 'switch') {
      log.error({ agentId: assignment.agentId, why: result.why }, 'the active agent failed the periodic check; its messages wait in its queue until it returns');
    }
    emit('check.completed', { assignment, result });
  });

  // applied receipts raise watermarks; written in batches
  const marks = new Map<string, number>();
  const flushMarks = async () => {
    if (marks.size === 0) return;
    const batch = [...marks].map(([deviceId, seq]) => ({ deviceId, seq }));
    marks.clear();
    await store.advanceWatermarks(batch).then(
      () => emit('watermarks.stored', { marks: batch }),
      (err) => {
        // put them back: the next flush tries again
        for (const m of batch) marks.set(m.deviceId, Math.max(m.seq, marks.get(m.deviceId) ?? 0));
        log.warn({ err: (err as Error).message }, 'could not store watermarks; will retry');
      },
    );
  };
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

  async function dispatch(input: ConfigMessage): Promise<Dispatched> {
    if (state !== 'running') {
      throw state === 'created' || state === 'starting'
        ? new BatonError('runtime-not-started', 'dispatch() before start() finished; await runtime.start() first. The message was not stored')
        : stopped();
    }
    const m = validateMessage(input, (id) => deviceSet.has(id), cfg.maxMessageBytes);
    intake++;
    return new Promise<Dispatched>((resolve, reject) => {
      seqs.take(m.deviceId, (err, seq) => {
        if (--intake === 0) intakeDrained?.();
        if (err) return reject(new BatonError('database-unavailable', `could not reserve a seq for device ${m.deviceId} (${err.message}); the message was not stored`, { deviceId: m.deviceId }, { cause: err }));
        if (dispatcher.getSnapshot().status !== 'active') return reject(stopped());
        const epoch = coordinator.getSnapshot().context.assignment?.epoch ?? 0;
        dispatcher.send({ type: 'dispatch.message', message: { ...m, body: m.body ?? null, seq, epoch }, reply: { resolve, reject } });
      });
    });
  }

  return {
    async start() {
      if (state !== 'created') throw new BatonError('invalid-config', `start() called on a runtime that is ${state}`);
      state = 'starting';
      try {
        store ??= await createOrmStore({ databaseUrl: cfg.databaseUrl, logger: log.child({ actor: 'store' }) });
        await store.migrate();
        await broker.start();
      } catch (err) {
        state = 'stopped';
        await store?.close().catch(() => {});
        throw err;
      }
      seqs = new SeqAllocator(store, cfg.seqBlockSize);
      parker = new Parker(store, cfg.parkBatchSize);
      subscriptions.push(
        await broker.subscribeEvents('heartbeats', (p) => {
          const h = parseHeartbeat(p);
          if ('invalid' in h) return log.warn({ why: h.invalid }, 'ignored a malformed heartbeat');
          registry.heartbeat(h);
        }),
        await broker.subscribeEvents('receipts', async (p) => {
          const r = parseReceipt(p);
          if ('invalid' in r) return log.warn({ why: r.invalid }, 'ignored a malformed receipt');
          if (r.type === 'applied') {
            for (const m of r.marks) marks.set(m.deviceId, Math.max(m.seq, marks.get(m.deviceId) ?? 0));
            emit('receipts.applied', r);
          } else {
            await store.deadLetter(r.entry);
            emit('message.dead-lettered', { deviceId: r.entry.deviceId, seq: r.entry.seq, reason: r.entry.reason, agentId: r.agentId });
          }
        }),
      );
      dispatcher.start();
      coordinator.start();
      state = 'running';
      every(200, flushMarks);
      every(cfg.probeInterval, async () => {
        const a = coordinator.getSnapshot().context.assignment;
        if (!a) return;
        const info = await broker.queueInfo(a.topic);
        if (info) registry.send(a.agentId, { type: 'agent.probe', consumers: info.consumers });
      });
      log.info({ namespace: cfg.namespace, devices: cfg.devices.length }, 'runtime started');
    },

    async stop() {
      if (state !== 'running') return;
      state = 'stopping';
      // messages already handed to dispatch() are accepted: wait for their seqs
      if (intake > 0) await new Promise<void>((resolve) => (intakeDrained = resolve));
      dispatcher.send({ type: 'dispatcher.stop' });
      await waitFor(dispatcher, (s) => s.status === 'done');
      coordinator.send({ type: 'coordinator.stop' });
      for (const t of timers.splice(0)) t.cancel();
      for (const s of subscriptions.splice(0)) await s.cancel();
      registry.stop();
      await flushMarks();
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

    async status() {
      const assignment = coordinator.getSnapshot().context.assignment;
      const ready = state === 'running';
      return {
        state,
        coordinator: coordinator.getSnapshot().value,
        dispatcher: dispatcher.getSnapshot().value,
        assignment,
        agents: registry.list(),
        parked: ready ? await store.countParked() : 0,
        queueDepth: ready && assignment ? ((await broker.queueInfo(assignment.topic))?.messages ?? null) : null,
        devices: ready ? await store.deviceStreams() : [],
      };
    },

    on: (k, l) => void emitter.on(k, l),
    off: (k, l) => void emitter.off(k, l),
    once: (k) => new Promise((resolve) => emitter.once(k, resolve)),
  };
}
