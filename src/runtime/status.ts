/**
 * `status()`: what the runtime is doing now (its state, leadership, machines, agents, queue, parked
 * rows, devices, switches), the gauges refreshed from the same reads; and whether RabbitMQ blocks
 * publishes, which status reports and which keeps it from asking the broker. The open alarms are
 * alarm-watch.ts's.
 */
import type { Alarm, AuditEntry, DeviceState, RuntimeStatus } from '../api.ts';
import type { AssignmentStore, Broker, DeliveryStore, ParkingStore } from '../ports.ts';
import type { AgentRegistry } from './agent-registry.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import type { CoordinatorActor } from './coordinator-provided.ts';
import type { DispatcherActor } from './dispatcher-provided.ts';
import type { Emit } from './events.ts';
import type { Leadership } from './leadership.ts';
import type { Metrics } from './metrics.ts';

/** RabbitMQ's resource alarm: why it blocks publishes right now, or null. */
export class BrokerAlarm {
  blocked: string | null = null;

  constructor(private readonly emit: Emit) {}

  readonly onBlocked = (reason: string | null) => {
    this.blocked = reason;
    if (reason === null) this.emit('broker.unblocked', {});
    else this.emit('broker.blocked', { reason });
  };
}

export interface StatusDeps {
  runtimeId: string;
  state(): RuntimeStatus['state'];
  coordinator: Pick<CoordinatorActor, 'getSnapshot'>;
  dispatcher: Pick<DispatcherActor, 'getSnapshot'>;
  leadership: Pick<Leadership, 'leading' | 'leader'>;
  broker: Pick<Broker, 'queueInfo'>;
  alarm: Pick<BrokerAlarm, 'blocked'>;
  store: Pick<ParkingStore, 'countParked'> & Pick<DeliveryStore, 'deviceStreams'> & Pick<AssignmentStore, 'listSwitches'>;
  registry: Pick<AgentRegistry, 'list'>;
  ledger: Pick<AppliedLedger, 'lag'>;
  /** how the device's line stands (blocked, retrying, flowing, idle), by the active agent's reports */
  deviceState(deviceId: string): DeviceState;
  metrics: Metrics;
  queueOf(agentId: string): string;
  inspectorUrl(): string | null;
  /** the newest audit rows (the runtime's `audit()`) */
  audit?(opts: { limit: number }): Promise<AuditEntry[]>;
  /** the alarms open now */
  alarms(): Alarm[];
}

/** How many audit rows status() shows. */
export const STATUS_AUDIT_ROWS = 20;

export function runtimeStatus(d: StatusDeps): () => Promise<RuntimeStatus> {
  const { coordinator, leadership, store, metrics } = d;
  return async () => {
    const assignment = coordinator.getSnapshot().context.assignment;
    const ready = d.state() === 'running';
    const brokerBlocked = d.alarm.blocked;
    // a blocked connection answers nothing until the alarm clears: status must not hang on it
    const queueDepth = ready && assignment && brokerBlocked === null ? ((await d.broker.queueInfo(d.queueOf(assignment.agentId)))?.messages ?? null) : null;
    const parked = ready ? await store.countParked() : 0;
    const agents = d.registry.list();
    metrics.queueDepth.set(queueDepth ?? 0);
    metrics.parkedNow.set(parked);
    metrics.epoch.set(assignment?.epoch ?? 0);
    metrics.leading.set(leadership.leading ? 1 : 0);
    metrics.setAgentStates(agents);
    return {
      state: d.state(),
      runtimeId: d.runtimeId,
      leader: leadership.leader(),
      leading: leadership.leading,
      coordinator: coordinator.getSnapshot().value,
      dispatcher: d.dispatcher.getSnapshot().value,
      assignment,
      agents,
      parked,
      queueDepth,
      devices: ready ? (await store.deviceStreams()).map((s) => ({ ...s, lag: d.ledger.lag(s.deviceId), state: d.deviceState(s.deviceId) })) : [],
      switches: ready ? await store.listSwitches() : [],
      inspectorUrl: d.inspectorUrl(),
      brokerBlocked: d.alarm.blocked,
      audit: ready && d.audit ? await d.audit({ limit: STATUS_AUDIT_ROWS }) : [],
      alarms: d.alarms(),
    };
  };
}
