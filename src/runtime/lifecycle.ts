/**
 * The runtime's life: `start()` opens the store and the broker, listens to heartbeats, starts the
 * machines, then the leadership and the periodic tasks; `stop()` takes them down in the reverse
 * order, once what was accepted is settled; `ready()` waits for an active agent. Its state is the
 * runtime's (`created` → `starting` → `running` → `stopping` → `stopped`).
 */
import type { Logger } from 'pino';
import { waitFor } from 'xstate';
import type { Assignment } from '../../machines/coordinator.machine.ts';
import type { RuntimeStatus } from '../api.ts';
import type { RuntimeConfig } from '../config.ts';
import { BatonError } from '../errors.ts';
import type { Broker, Store, StoreLifecycle, Subscription } from '../ports.ts';
import type { AgentRegistry } from './agent-registry.ts';
import type { AlarmWatch } from './alarm-watch.ts';
import type { CoordinatorActor } from './coordinator-provided.ts';
import type { Drains } from './drained.ts';
import type { Fates } from './fates.ts';
import type { Intake } from './dispatch.ts';
import type { DispatcherActor } from './dispatcher-provided.ts';
import type { Inspection } from './inspection.ts';
import type { LeaderElector } from './leader-elector.ts';
import type { LeaseGranter } from './lease-granter.ts';
import type { ReceiptReader } from './receipt-reader.ts';
import type { StoreSlot } from './store-slot.ts';
import type { Timers } from './timers.ts';
import type { WatermarkWriter } from './watermarks.ts';

export interface LifecycleDeps {
  cfg: Pick<RuntimeConfig, 'namespace' | 'devices' | 'forgetAgentAfter' | 'probeInterval'>;
  log: Logger;
  slot: Pick<StoreSlot, 'open' | 'closeQuietly'>;
  /** builds the store when none was given (the composition root's adapter) */
  openStore(): Promise<Store>;
  store: StoreLifecycle;
  broker: Pick<Broker, 'start' | 'subscribeEvents' | 'close'>;
  onHeartbeat(p: unknown): void;
  inspection: Pick<Inspection, 'statelyLoaded'>;
  inspectorServer: { start(): Promise<string>; stop(): Promise<void> } | null;
  dispatcher: DispatcherActor;
  coordinator: CoordinatorActor;
  elector: Pick<LeaderElector, 'start' | 'stop' | 'leading'>;
  granter: Pick<LeaseGranter, 'stop'>;
  registry: Pick<AgentRegistry, 'forgetDead' | 'stop'>;
  receipts: Pick<ReceiptReader, 'readReceipts' | 'settled'>;
  intake: Pick<Intake, 'pending' | 'drained'>;
  marks: Pick<WatermarkWriter, 'flush'>;
  /** `drained()` waiters: nothing settles them once receipts are no longer read */
  drains?: Pick<Drains, 'stopped'>;
  /** `fate()` waits: the same */
  fates?: Pick<Fates, 'stopped'>;
  probe(): Promise<void>;
  timers: Timers;
  /** judged periodically while running; all cleared when the runtime stops */
  alarms: Pick<AlarmWatch, 'every' | 'check' | 'stop'>;
}

export class Lifecycle {
  state: RuntimeStatus['state'] = 'created';
  private readonly subscriptions: Subscription[] = [];

  constructor(private readonly d: LifecycleDeps) {}

  readonly start = async () => {
    const { d } = this;
    const { cfg, log, store, broker, timers } = d;
    if (this.state !== 'created') throw new BatonError('invalid-config', `start() called on a runtime that is ${this.state}`);
    this.state = 'starting';
    try {
      await d.slot.open(d.openStore);
      await store.migrate();
      await broker.start();
    } catch (err) {
      this.state = 'stopped';
      await d.slot.closeQuietly();
      throw err;
    }
    this.subscriptions.push(await broker.subscribeEvents('heartbeats', d.onHeartbeat));
    await d.inspection.statelyLoaded(log);
    d.dispatcher.start();
    d.coordinator.start();
    this.state = 'running';
    if (d.inspectorServer) log.info({ url: await d.inspectorServer.start() }, 'inspector listening');
    await d.elector.start();
    timers.every(200, d.marks.flush);
    timers.every(Math.min(cfg.forgetAgentAfter, 10_000), () => void d.registry.forgetDead());
    timers.every(cfg.probeInterval, d.probe);
    timers.every(d.alarms.every, d.alarms.check);
    log.info({ namespace: cfg.namespace, devices: cfg.devices.length, leading: d.elector.leading }, 'runtime started');
  };

  readonly stop = async () => {
    const { d } = this;
    if (this.state !== 'running') return;
    this.state = 'stopping';
    // messages already handed to dispatch() are accepted: wait for their seqs
    if (d.intake.pending > 0) await d.intake.drained();
    d.dispatcher.send({ type: 'dispatcher.stop' });
    await waitFor(d.dispatcher, (s) => s.status === 'done');
    d.coordinator.send({ type: 'coordinator.stop' });
    d.granter.stop();
    await d.elector.stop();
    d.timers.cancelAll();
    d.alarms.stop();
    d.receipts.readReceipts(false);
    await d.receipts.settled();
    d.drains?.stopped();
    d.fates?.stopped();
    for (const s of this.subscriptions.splice(0)) await s.cancel();
    d.registry.stop();
    await d.inspectorServer?.stop();
    await d.marks.flush();
    await d.broker.close();
    await d.store.close();
    this.state = 'stopped';
    d.log.info('runtime stopped');
  };

  readonly ready = async ({ timeoutMs = 30_000 } = {}): Promise<Assignment> => {
    if (this.state !== 'running') throw new BatonError('runtime-not-started', 'ready() before start() finished; await runtime.start() first');
    try {
      await waitFor(this.d.dispatcher, (s) => s.matches('sending'), { timeout: timeoutMs });
    } catch {
      throw new BatonError(
        'no-active-agent',
        `no agent became active within ${timeoutMs} ms; messages dispatched meanwhile are parked. Start one: npx baton agent --id ID --devices FILE`,
      );
    }
    return this.d.coordinator.getSnapshot().context.assignment!;
  };
}
