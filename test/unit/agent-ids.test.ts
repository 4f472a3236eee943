// Agent ids come from the broker, written by whoever publishes there: the runtime refuses any that an
// agent could not have been configured with, and what it prints (/metrics, `baton status`) escapes
// control characters, whatever reached the database before.
import { describe, expect, it } from 'vitest';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { Metrics } from '../../src/runtime/metrics.ts';
import { printable } from '../../src/printable.ts';
import { parseHeartbeat, parseReceipt } from '../../src/side-channel.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { statusJson, statusText, type StatusReport } from '../../src/tools/status.ts';
import { agentKey, seal } from '../../src/trust.ts';
import { captureLogs } from '../support/log-capture.ts';
import { TEST_SECRET, runtimeTrust } from '../support/trust.ts';

/** ESC, BEL, CSI as one C1 character, a right-to-left override, a line separator */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202e\u2028]/;
const hostile = ['a1\u001b]0;owned\u0007', 'a1\u001b[2J', 'a1\u009b31m', 'a1\u202egnp.exe', 'a1\nbaton_leader 1', 'a1 a2', 'a1/../x', '', 'x'.repeat(65), '-a1'];
const heartbeat = (agentId: string, beat = 1) => ({ type: 'heartbeat', agentId, host: 'h', pid: 1, sentAt: 0, beat, incarnation: `${agentId}#1` });
/** sealed with the key the secret gives that id: only the id itself is wrong */
const sealedHeartbeat = (agentId: string, beat = 1) => seal(agentKey(TEST_SECRET, agentId), 'heartbeats', agentId, heartbeat(agentId, beat));

describe('agent ids at the edge: letters, digits, ".", "_", "-", at most 64, as an agent is configured', () => {
  it.each(hostile.map((id) => [JSON.stringify(id), id]))('refuses the heartbeat of agent %s', (_shown, agentId) => {
    expect(parseHeartbeat(heartbeat(agentId))).toMatchObject({ invalid: expect.stringMatching(/agentId/) });
  });

  it.each(hostile.map((id) => [JSON.stringify(id), id]))('refuses a receipt from agent %s', (_shown, agentId) => {
    expect(parseReceipt({ type: 'applied', agentId, epoch: 1, ranges: [] })).toMatchObject({ invalid: expect.stringMatching(/agentId/) });
  });

  it.each(['a1', 'agent-7.eu_west', 'A'.repeat(64)])('takes the heartbeat of agent %s', (agentId) => {
    expect(parseHeartbeat(heartbeat(agentId))).toMatchObject({ type: 'heartbeat', agentId });
  });

  it('a runtime never registers such an agent: not in status(), not in /metrics; the refusal is logged without the raw id', async () => {
    const world = new World(1);
    const rabbit = new MemoryRabbit('t');
    const gate = new Gate('r1');
    const logs = captureLogs('warn');
    const runtime = createRuntime({
      devices: ['fw1'],
      runtimeId: 'r1',
      namespace: 't',
      ...runtimeTrust,
      ports: { broker: rabbit.connect({ schedule: gate.run }), store: createMemoryStore({ now: () => world.now }) },
      clock: world.clock(gate),
      logger: logs.logger,
    });
    await runtime.start();
    const agent = rabbit.connect({ schedule: (f) => f() });
    await agent.start();
    for (const [i, id] of hostile.entries()) await agent.publishEvent('heartbeats', sealedHeartbeat(id, i + 1));
    await agent.publishEvent('heartbeats', sealedHeartbeat('a1', 1));
    await world.run(() => false, world.now + 200);

    expect((await runtime.status()).agents.map((a) => a.agentId)).toEqual(['a1']);
    const metrics = await runtime.metrics();
    expect(metrics).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e\u2028]/); // its lines end in \n
    expect(metrics).not.toContain('owned');
    // refused before their content is read; logged without the id, at most once every 10 s
    const refusals = logs.records().filter((r) => r.msg === 'refused a heartbeat that no agent of this deployment signed');
    expect(refusals).toEqual([expect.objectContaining({ why: 'signed in the name of no valid agent id' })]);
    expect(logs.text()).not.toContain('owned');
    await runtime.stop();
  });
});

describe('what baton prints escapes control characters', () => {
  it('printable escapes C0, DEL, C1, bidirectional overrides and line separators as \\uXXXX, and nothing else', () => {
    expect(printable('a\u001b[2J\u0007\u007f\u009b\u202e\u2028ü→ok')).toBe('a\\u001b[2J\\u0007\\u007f\\u009b\\u202e\\u2028ü→ok');
  });

  it('/metrics: an agent label with control characters is escaped (whatever fed it)', async () => {
    const m = new Metrics();
    m.setAgentStates([{ agentId: 'a1\u001b]0;owned\u0007', state: 'active' }, { agentId: 'a2\u009b31m', state: 'idle' }]);
    const text = await m.text();
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(text).toContain('agent="a1\\\\u001b]0;owned\\\\u0007"');
  });

  it('baton status: agent ids, hosts, switch fields read from the database are escaped', () => {
    const at = new Date(0);
    const bad = 'x\u001b]0;owned\u0007\u009b2J';
    const report: StatusReport = {
      assignment: { agentId: bad, topic: 't', host: bad, epoch: 3, lock: 0, phase: 'normal' } as unknown as StatusReport['assignment'],
      parked: 0,
      deadLetters: 0,
      queueDepth: null,
      agents: [{ agentId: bad, topic: bad, host: bad, status: 'up', lastHeartbeat: at.toISOString(), queueDepth: 0, consumers: 1 }],
      devices: [{ deviceId: bad, nextSeq: 1, watermark: 0 }],
      switches: [{ id: bad, fromAgent: bad, toAgent: bad, epoch: 3, reason: bad, phase: 'normal', startedAt: at, drainingAt: at, replayingAt: at, completedAt: at, moved: 0, replayed: 0 } as unknown as StatusReport['switches'][number]],
      audit: [{ id: 1, at: 0, action: 'pause', target: bad, by: bad, outcome: 'done', detail: bad }],
    };
    const lines = statusText(report);
    for (const line of lines) expect(line).not.toMatch(CONTROL);
    expect(lines.join('\n')).toContain('x\\u001b]0;owned\\u0007\\u009b2J');
    // --json: no raw control character either, and the same JSON
    const json = statusJson(report);
    expect(json).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e\u2028]/);
    expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(report)));
  });
});
