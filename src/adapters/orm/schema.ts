/** The persisted tables (DESIGN.md §6) as MikroORM entity schemas, and the migrations that create them. */
import { EntitySchema } from '@mikro-orm/core';
import { Migration } from '@mikro-orm/migrations';
import type { SwitchRecord } from '../../ports.ts';
import { Migration0006IdempotencyKeys } from './schema-idempotency.ts';
import { Migration0007LeaderUrl } from './schema-leader-url.ts';

export interface AgentServiceUsedRow {
  id: number;
  agentId: string;
  topic: string;
  status: string;
  host: string;
  lock: number;
  epoch: string;
  phase: string;
  switchId: string | null;
  previousAgent: string | null;
  updatedAt: Date;
}

export const AgentServiceUsed = new EntitySchema<AgentServiceUsedRow>({
  name: 'AgentServiceUsed',
  tableName: 'agent_service_used',
  properties: {
    id: { type: 'smallint', primary: true },
    agentId: { type: 'text' },
    topic: { type: 'text' },
    status: { type: 'text' },
    host: { type: 'text' },
    lock: { type: 'smallint' },
    epoch: { type: 'bigint' },
    phase: { type: 'text' },
    switchId: { type: 'text', nullable: true },
    previousAgent: { type: 'text', nullable: true },
    updatedAt: { type: 'datetime' },
  },
});

export const MessageQueue = new EntitySchema<{ id: string; deviceId: string; seq: string; epoch: string; payload: string; refused: boolean; createdAt: Date }>({
  name: 'MessageQueue',
  tableName: 'message_queues',
  properties: {
    id: { type: 'bigint', primary: true, autoincrement: true },
    deviceId: { type: 'text' },
    seq: { type: 'bigint' },
    epoch: { type: 'bigint' },
    payload: { type: 'text' },
    refused: { type: 'boolean', default: false },
    createdAt: { type: 'datetime' },
  },
});

export const AgentEntity = new EntitySchema<{ agentId: string; topic: string; host: string; status: string; lastHeartbeat: Date; registeredAt: Date }>({
  name: 'Agent',
  tableName: 'agents',
  properties: {
    agentId: { type: 'text', primary: true },
    topic: { type: 'text' },
    host: { type: 'text' },
    status: { type: 'text' },
    lastHeartbeat: { type: 'datetime' },
    registeredAt: { type: 'datetime' },
  },
});

export const DeviceStreamEntity = new EntitySchema<{ deviceId: string; nextSeq: string; watermark: string; updatedAt: Date }>({
  name: 'DeviceStream',
  tableName: 'device_streams',
  properties: {
    deviceId: { type: 'text', primary: true },
    nextSeq: { type: 'bigint' },
    watermark: { type: 'bigint' },
    updatedAt: { type: 'datetime' },
  },
});

/** a `switches` row as the ORM reads it: a SwitchRecord with the bigint epoch as text and the phase unchecked */
export const SwitchEntity = new EntitySchema<Omit<SwitchRecord, 'epoch' | 'phase'> & { epoch: string; phase: string }>({
  name: 'Switch',
  tableName: 'switches',
  properties: {
    id: { type: 'text', primary: true },
    fromAgent: { type: 'text', nullable: true },
    toAgent: { type: 'text', nullable: true },
    epoch: { type: 'bigint' },
    reason: { type: 'text' },
    phase: { type: 'text' },
    startedAt: { type: 'datetime' },
    drainingAt: { type: 'datetime', nullable: true },
    replayingAt: { type: 'datetime', nullable: true },
    completedAt: { type: 'datetime', nullable: true },
    moved: { type: 'integer' },
    replayed: { type: 'integer' },
  },
});

export const DeadLetterEntity = new EntitySchema<{
  id: string;
  deviceId: string;
  seq: string;
  epoch: string;
  agentId: string;
  reason: string;
  status: number | null;
  response: string | null;
  payload: string;
  createdAt: Date;
  resolutionKind: string | null;
  resolutionBy: string | null;
  resolutionAt: Date | null;
  resolutionDetail: string | null;
  resolutionSeq: string | null;
}>({
  name: 'DeadLetter',
  tableName: 'dead_letters',
  properties: {
    id: { type: 'bigint', primary: true, autoincrement: true },
    deviceId: { type: 'text' },
    seq: { type: 'bigint' },
    epoch: { type: 'bigint' },
    agentId: { type: 'text' },
    reason: { type: 'text' },
    status: { type: 'integer', nullable: true },
    response: { type: 'text', nullable: true },
    payload: { type: 'text' },
    createdAt: { type: 'datetime' },
    resolutionKind: { type: 'text', nullable: true },
    resolutionBy: { type: 'text', nullable: true },
    resolutionAt: { type: 'datetime', nullable: true },
    resolutionDetail: { type: 'text', nullable: true },
    resolutionSeq: { type: 'bigint', nullable: true },
  },
});

/** The first schema: every table of DESIGN.md §6. */
export class Migration0001Initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table agent_service_used (
      id smallint primary key default 1 check (id = 1),
      agent_id text not null, topic text not null, status text not null, host text not null,
      lock smallint not null default 0 check (lock in (0, 1)),
      epoch bigint not null, phase text not null,
      switch_id text null, previous_agent text null,
      updated_at timestamptz not null default now())`);
    this.addSql(`create table message_queues (
      id bigserial primary key, device_id text not null, seq bigint not null, epoch bigint not null,
      payload text not null, created_at timestamptz not null default now(),
      unique (device_id, seq))`);
    this.addSql(`create table agents (
      agent_id text primary key, topic text not null, host text not null, status text not null,
      last_heartbeat timestamptz not null, registered_at timestamptz not null default now())`);
    this.addSql(`create table device_streams (
      device_id text primary key, next_seq bigint not null, watermark bigint not null default 0,
      updated_at timestamptz not null default now())`);
    this.addSql(`create table switches (
      id text primary key, from_agent text null, to_agent text null, epoch bigint not null,
      reason text not null, phase text not null, started_at timestamptz not null default now(),
      draining_at timestamptz null, replaying_at timestamptz null, completed_at timestamptz null,
      moved integer not null default 0, replayed integer not null default 0)`);
    this.addSql(`create table dead_letters (
      id bigserial primary key, device_id text not null, seq bigint not null, epoch bigint not null,
      agent_id text not null, reason text not null, status integer null, response text null,
      payload text not null, created_at timestamptz not null default now())`);
    // a message is dead-lettered once; malformed ones (seq 0) are all kept
    this.addSql('create unique index dead_letters_device_seq on dead_letters (device_id, seq) where seq > 0');
  }

  override async down(): Promise<void> {
    for (const t of ['dead_letters', 'switches', 'device_streams', 'agents', 'message_queues', 'agent_service_used']) {
      this.addSql(`drop table if exists ${t}`);
    }
  }
}

/** The runtime leadership lease: one runtime acts, the others stand by. */
export class Migration0002Leader extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table runtime_leader (
      id smallint primary key default 1 check (id = 1),
      holder text not null, epoch bigint not null, expires_at timestamptz not null)`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists runtime_leader');
  }
}

/** The seqs the leader knows settled above each device's watermark, so that a new leader knows them too. */
export class Migration0003Settled extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table device_streams add column settled text not null default '[]'`);
  }

  override async down(): Promise<void> {
    this.addSql('alter table device_streams drop column if exists settled');
  }
}

export const RuntimeLeaderEntity = new EntitySchema<{ id: number; holder: string; epoch: string; expiresAt: Date; url: string | null }>({
  name: 'RuntimeLeader',
  tableName: 'runtime_leader',
  properties: {
    id: { type: 'smallint', primary: true },
    holder: { type: 'text' },
    epoch: { type: 'bigint' },
    expiresAt: { type: 'datetime' },
    url: { type: 'text', nullable: true },
  },
});

/**
 * Late statements: a message an ambiguous park did not store is marked refused (a late copy of that
 * park then inserts nothing); a settled record carries its revision (a late write keeps no ranges).
 */
export class Migration0004LateWrites extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table message_queues add column refused boolean not null default false');
    this.addSql('alter table device_streams add column settled_rev bigint not null default 0');
  }

  override async down(): Promise<void> {
    this.addSql('alter table message_queues drop column if exists refused');
    this.addSql('alter table device_streams drop column if exists settled_rev');
  }
}

export const DeviceLineEntity = new EntitySchema<{
  deviceId: string; paused: boolean; blockedAt: string | null; retrySeq: string | null; retryN: number | null; releasedThrough: string; by: string; at: Date; note: string;
}>({
  name: 'DeviceLine',
  tableName: 'device_lines',
  properties: {
    deviceId: { type: 'text', primary: true },
    paused: { type: 'boolean' },
    blockedAt: { type: 'bigint', nullable: true },
    retrySeq: { type: 'bigint', nullable: true },
    retryN: { type: 'integer', nullable: true },
    releasedThrough: { type: 'bigint' },
    by: { type: 'text' },
    at: { type: 'datetime' },
    note: { type: 'text' },
  },
});

export const AuditEntity = new EntitySchema<{ id: string; at: Date; action: string; target: string; by: string; outcome: string; detail: string }>({
  name: 'Audit',
  tableName: 'audit',
  properties: {
    id: { type: 'bigint', primary: true, autoincrement: true },
    at: { type: 'datetime' },
    action: { type: 'text' },
    target: { type: 'text' },
    by: { type: 'text' },
    outcome: { type: 'text' },
    detail: { type: 'text' },
  },
});

/**
 * Operator actions: how a dead letter was settled (five columns, all null while it is open; the
 * unique (device_id, seq) where seq > 0 index stays: a second refusal updates the row), each
 * device line's standing order, and the audit table.
 */
export class Migration0005OperatorActions extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table dead_letters add column resolution_kind text null, add column resolution_by text null,
      add column resolution_at timestamptz null, add column resolution_detail text null, add column resolution_seq bigint null`);
    this.addSql(`create table device_lines (
      device_id text primary key, paused boolean not null, blocked_at bigint null, retry_seq bigint null,
      retry_n integer null, released_through bigint not null default 0, "by" text not null, "at" timestamptz not null,
      note text not null default '')`);
    this.addSql(`create table audit (
      id bigserial primary key, "at" timestamptz not null, action text not null, target text not null,
      "by" text not null, outcome text not null, detail text not null default '')`);
    // listAudit by target, newest first
    this.addSql('create index audit_target_id on audit (target, id)');
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists audit');
    this.addSql('drop table if exists device_lines');
    for (const c of ['kind', 'by', 'at', 'detail', 'seq']) this.addSql(`alter table dead_letters drop column if exists resolution_${c}`);
  }
}

export const entities = [AgentServiceUsed, MessageQueue, AgentEntity, DeviceStreamEntity, SwitchEntity, DeadLetterEntity, RuntimeLeaderEntity, DeviceLineEntity, AuditEntity];

export const migrationsList = [
  { name: 'Migration0001Initial', class: Migration0001Initial },
  { name: 'Migration0002Leader', class: Migration0002Leader },
  { name: 'Migration0003Settled', class: Migration0003Settled },
  { name: 'Migration0004LateWrites', class: Migration0004LateWrites },
  { name: 'Migration0005OperatorActions', class: Migration0005OperatorActions },
  { name: 'Migration0006IdempotencyKeys', class: Migration0006IdempotencyKeys },
  { name: 'Migration0007LeaderUrl', class: Migration0007LeaderUrl },
];
