/** Prometheus metrics of one runtime (prom-client, a registry of its own). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { printable } from '../printable.ts';

export class Metrics {
  readonly registry = new Registry();
  get contentType(): string {
    return this.registry.contentType;
  }
  readonly dispatched = new Counter({ name: 'baton_messages_dispatched_total', help: 'messages accepted by dispatch()', labelNames: ['device'], registers: [this.registry] });
  readonly parked = new Counter({ name: 'baton_messages_parked_total', help: 'messages parked in PostgreSQL', registers: [this.registry] });
  readonly applied = new Counter({ name: 'baton_messages_applied_total', help: 'messages devices applied (from agent receipts)', labelNames: ['device'], registers: [this.registry] });
  readonly deadLettered = new Counter({ name: 'baton_messages_dead_lettered_total', help: 'messages dead-lettered', labelNames: ['device'], registers: [this.registry] });
  readonly watermark = new Gauge({ name: 'baton_device_watermark', help: 'highest seq such that it and every seq below it dispatched here are known applied or dead-lettered', labelNames: ['device'], registers: [this.registry] });
  readonly lag = new Gauge({ name: 'baton_device_lag', help: 'seqs dispatched to the device and not yet known applied', labelNames: ['device'], registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'baton_queue_depth', help: 'messages waiting in the active agent queue', registers: [this.registry] });
  readonly parkedNow = new Gauge({ name: 'baton_parked', help: 'messages parked right now', registers: [this.registry] });
  readonly epoch = new Gauge({ name: 'baton_epoch', help: 'the fencing epoch of the active agent', registers: [this.registry] });
  readonly leading = new Gauge({ name: 'baton_leader', help: '1 when this runtime leads', registers: [this.registry] });
  readonly switches = new Counter({ name: 'baton_switches_total', help: 'switches started, by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly phaseSeconds = new Histogram({
    name: 'baton_switch_phase_seconds',
    help: 'time spent in each switch phase',
    labelNames: ['phase'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly agentState = new Gauge({ name: 'baton_agent_state', help: '1 for the state each agent is in', labelNames: ['agent', 'state'], registers: [this.registry] });

  readonly alarmsOpen = new Gauge({ name: 'baton_alarms_open', help: 'alarms open now, by kind', labelNames: ['kind'], registers: [this.registry] });
  readonly alarmsRaised = new Counter({ name: 'baton_alarms_raised_total', help: 'alarms raised, by kind', labelNames: ['kind'], registers: [this.registry] });

  readonly anomalies = new Counter({
    name: 'baton_anomalies_total',
    help: 'messages an agent refused to send: at or below the device watermark and never applied (a seq reused, a message that overtook another)',
    labelNames: ['device'],
    registers: [this.registry],
  });

  /** Per-seq accounting lives in the runtime's AppliedLedger; these only publish it. */
  onDispatched(deviceId: string): void {
    this.dispatched.inc({ device: deviceId });
  }

  /** `count` seqs newly known applied from a receipt */
  onApplied(deviceId: string, count: number): void {
    if (count > 0) this.applied.inc({ device: deviceId }, count);
  }

  onDeadLettered(deviceId: string, anomaly: boolean): void {
    this.deadLettered.inc({ device: deviceId });
    if (anomaly) this.anomalies.inc({ device: deviceId });
  }

  /** the device's exact watermark and lag (null: nothing dispatched to it here) */
  setDevice(deviceId: string, watermark: number, lag: number | null): void {
    this.watermark.set({ device: deviceId }, watermark);
    if (lag !== null) this.lag.set({ device: deviceId }, lag);
  }

  setAgentStates(agents: Array<{ agentId: string; state: string }>): void {
    this.agentState.reset();
    // prom-client escapes only \\, \n and "; an id is refused at the edge, and escaped here whatever fed it
    for (const a of agents) for (const s of ['idle', 'active', 'suspect', 'dead']) this.agentState.set({ agent: printable(a.agentId), state: s }, a.state === s ? 1 : 0);
  }

  /** every kind shows from the start, at 0 (a series that appears only when it fires cannot be rated) */
  zeroAlarms(kinds: readonly string[]): void {
    for (const kind of kinds) {
      this.alarmsRaised.inc({ kind }, 0);
      this.alarmsOpen.set({ kind }, 0);
    }
  }

  /** an alarm of `kind` was raised (or cleared: `raised` false); `open`: how many of that kind are open now */
  onAlarm(kind: string, raised: boolean, open: number): void {
    if (raised) this.alarmsRaised.inc({ kind });
    this.alarmsOpen.set({ kind }, open);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
