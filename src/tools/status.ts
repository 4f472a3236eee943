/** `baton status`: what the database and the broker say, read without starting a runtime. */
import { createAmqpBroker } from '../adapters/amqp/broker.ts';
import { topology } from '../topology.ts';
import { systemClock } from '../clock.ts';
import { runtimeDefaults } from '../config.ts';
import { silentLogger } from '../logger.ts';
import { createOrmStore } from '../adapters/orm/store.ts';
import { printable as p, printableJson } from '../printable.ts';
import type {
  AgentRecord, AgentStore, Assignment, AssignmentStore, AuditEntry, AuditStore, Broker, DeadLetterStore, DeliveryStore, DeviceStream, ParkingStore, SwitchRecord,
} from '../ports.ts';

export interface StatusReport {
  assignment: Assignment | null;
  parked: number;
  deadLetters: number;
  queueDepth: number | null;
  agents: Array<Omit<AgentRecord, 'lastHeartbeat'> & { lastHeartbeat: string; queueDepth: number | null; consumers: number | null }>;
  devices: DeviceStream[];
  switches: SwitchRecord[];
  /** the newest operator actions (the audit table), newest first */
  audit: AuditEntry[];
}

/** How many audit rows `baton status` shows (`baton audit` shows more). */
const AUDIT_ROWS = 10;

/** What `baton status` reads of the database: reads of six roles, nothing it could change. */
export type StatusStore = Pick<AssignmentStore, 'getAssignment' | 'listSwitches'> &
  Pick<AgentStore, 'listAgents'> &
  Pick<ParkingStore, 'countParked'> &
  Pick<DeadLetterStore, 'listDeadLetters'> &
  Pick<DeliveryStore, 'deviceStreams'> &
  Pick<AuditStore, 'listAudit'>;

/** Opens the database and the broker, reads the status, and closes both. */
export async function readStatus(o: { amqpUrl?: string; databaseUrl?: string; namespace: string }): Promise<StatusReport> {
  const logger = silentLogger();
  const store = await createOrmStore({ databaseUrl: o.databaseUrl ?? runtimeDefaults.databaseUrl, logger, createDatabase: false });
  const broker = createAmqpBroker({
    url: o.amqpUrl ?? runtimeDefaults.amqpUrl,
    namespace: o.namespace,
    queueType: 'classic',
    maxUnconfirmed: 1,
    connectAttempts: 1,
    reconnectInitialMs: 100,
    reconnectMaxMs: 100,
    clock: systemClock,
    logger,
  });
  try {
    await store.migrate();
    await broker.start();
    return await statusOf(store, broker, o.namespace);
  } finally {
    await broker.close();
    await store.close();
  }
}

/** The status as the store and the broker's queue counts tell it. */
export async function statusOf(store: StatusStore, broker: Pick<Broker, 'queueInfo'>, namespace: string): Promise<StatusReport> {
  const assignment = await store.getAssignment();
  const agents = [];
  for (const a of await store.listAgents()) {
    const info = await broker.queueInfo(topology(namespace).agentQueue(a.agentId));
    agents.push({ ...a, lastHeartbeat: a.lastHeartbeat.toISOString(), queueDepth: info?.messages ?? null, consumers: info?.consumers ?? null });
  }
  return {
    assignment,
    parked: await store.countParked(),
    deadLetters: (await store.listDeadLetters({ limit: Number.MAX_SAFE_INTEGER })).length, // all of them, not the newest 1000
    queueDepth: assignment ? ((await broker.queueInfo(assignment.topic))?.messages ?? null) : null,
    agents,
    devices: await store.deviceStreams(),
    switches: await store.listSwitches(),
    audit: await store.listAudit({ limit: AUDIT_ROWS }),
  };
}

/** `baton status --json`: JSON escapes C0 controls itself; the rest of what `printable` escapes is escaped too, and it is still the same JSON. */
export function statusJson(s: StatusReport): string {
  return printableJson(JSON.stringify(s, null, 2));
}

/** `baton status` for a person: one line each; what came from the database is escaped (an agent wrote some of it). */
export function statusText(s: StatusReport): string[] {
  const lines: string[] = [];
  const out = (line: string) => lines.push(line);
  const a0 = s.assignment;
  out(`active agent: ${a0 ? `${p(a0.agentId)} (epoch ${a0.epoch}, phase ${p(a0.phase)}, lock ${a0.lock})` : 'none recorded'}`);
  out(`queue depth:  ${s.queueDepth ?? '-'}    parked: ${s.parked}    dead letters: ${s.deadLetters}`);
  out('agents:');
  for (const a of s.agents) out(`  ${p(a.agentId).padEnd(20)} ${p(a.status).padEnd(5)} last heartbeat ${p(a.lastHeartbeat)}`);
  out('devices:');
  for (const d of s.devices) out(`  ${p(d.deviceId).padEnd(20)} next seq ${d.nextSeq}  watermark ${d.watermark}`);
  if (s.switches.length > 0) out('switches:');
  for (const w of s.switches) {
    const ms = (a: Date | null, b: Date | null) => (a && b ? `${b.getTime() - a.getTime()} ms` : '-');
    out(`  ${p(w.id)} ${p(String(w.fromAgent))} → ${p(w.toAgent ?? '?')} epoch ${w.epoch} ${p(w.phase)}: switching ${ms(w.startedAt, w.drainingAt)}, draining ${ms(w.drainingAt, w.replayingAt)}, replaying ${ms(w.replayingAt, w.completedAt)}; moved ${w.moved}, replayed ${w.replayed} (${p(w.reason)})`);
  }
  if (s.audit.length > 0) out('operator actions (newest first; baton audit shows more):');
  for (const e of s.audit) out(`  ${new Date(e.at).toISOString()} ${p(e.action)} ${p(e.target)} by ${p(e.by)}: ${p(e.outcome)} (${p(e.detail)})`);
  return lines;
}
