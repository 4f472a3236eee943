/** Prometheus metrics of one runtime (prom-client, a registry of its own). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly dispatched = new Counter({ name: 'baton_messages_dispatched_total', help: 'messages accepted by dispatch()', labelNames: ['device'], registers: [this.registry] });
  readonly parked = new Counter({ name: 'baton_messages_parked_total', help: 'messages parked in PostgreSQL', registers: [this.registry] });
  readonly applied = new Counter({ name: 'baton_messages_applied_total', help: 'messages devices applied (from agent receipts)', labelNames: ['device'], registers: [this.registry] });
  readonly deadLettered = new Counter({ name: 'baton_messages_dead_lettered_total', help: 'messages dead-lettered', labelNames: ['device'], registers: [this.registry] });
  readonly watermark = new Gauge({ name: 'baton_device_watermark', help: 'highest seq the device is known to have applied', labelNames: ['device'], registers: [this.registry] });
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

  /** Seqs dispatched here and not yet known applied, per device, in increasing order. */
  private readonly unapplied = new Map<string, { seqs: number[]; head: number }>();
  private readonly marks = new Map<string, number>();

  onDispatched(deviceId: string, seq: number): void {
    this.dispatched.inc({ device: deviceId });
    let u = this.unapplied.get(deviceId);
    if (!u) this.unapplied.set(deviceId, (u = { seqs: [], head: 0 }));
    u.seqs.push(seq);
    this.lag.set({ device: deviceId }, u.seqs.length - u.head);
  }

  /** An applied receipt (the device's watermark): counts the seqs dispatched here that it newly covers. */
  onApplied(deviceId: string, seq: number): void {
    this.marks.set(deviceId, Math.max(seq, this.marks.get(deviceId) ?? 0));
    this.watermark.set({ device: deviceId }, this.marks.get(deviceId)!);
    const u = this.unapplied.get(deviceId);
    if (!u) return;
    const from = u.head;
    while (u.head < u.seqs.length && u.seqs[u.head]! <= seq) u.head++;
    if (u.head > from) this.applied.inc({ device: deviceId }, u.head - from);
    if (u.head > 4096) {
      u.seqs.splice(0, u.head);
      u.head = 0;
    }
    this.lag.set({ device: deviceId }, u.seqs.length - u.head);
  }

  /** A dead-lettered message: no longer waited for. */
  onDeadLettered(deviceId: string, seq: number): void {
    this.deadLettered.inc({ device: deviceId });
    const u = this.unapplied.get(deviceId);
    const i = u ? u.seqs.indexOf(seq, u.head) : -1;
    if (u && i >= 0) {
      u.seqs.splice(i, 1);
      this.lag.set({ device: deviceId }, u.seqs.length - u.head);
    }
  }

  /** seqs dispatched here to the device and not yet known applied (null: none dispatched here) */
  lagOf(deviceId: string): number | null {
    const u = this.unapplied.get(deviceId);
    return u ? u.seqs.length - u.head : null;
  }

  setAgentStates(agents: Array<{ agentId: string; state: string }>): void {
    this.agentState.reset();
    for (const a of agents) for (const s of ['idle', 'active', 'suspect', 'dead']) this.agentState.set({ agent: a.agentId, state: s }, a.state === s ? 1 : 0);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
