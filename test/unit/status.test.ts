// `baton status` over the in-memory store: what it reads (role reads only) and how it prints it.
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { statusOf, statusText } from '../../src/tools/status.ts';
import type { QueueInfo } from '../../src/ports.ts';

describe('baton status', () => {
  it('reads the assignment, agents with their queue depth, parked messages, dead letters, devices, switches and the newest operator actions', async () => {
    const store = createMemoryStore();
    const term = { holder: 'r1', epoch: (await store.acquireLeadership('r1', 60_000)).epoch };
    await store.recordFirstAgent({ agentId: 'a1', topic: 'baton.agent.a1', host: 'h' }, term);
    await store.upsertAgent({ agentId: 'a1', topic: 'baton.agent.a1', host: 'h', status: 'up', lastHeartbeat: new Date('2026-01-01T00:00:00Z') });
    await store.reserveSeqs('d1', 5, term);
    await store.park([{ deviceId: 'd1', seq: 1, method: 'PUT', path: '/x', body: null }], term);
    await store.deadLetter({ deviceId: 'd1', seq: 2, epoch: 1, agentId: 'a1', reason: '422', status: 422, response: null, payload: '{}' });
    await store.recordAudit({ at: Date.parse('2026-01-01T00:01:00Z'), action: 'dead-letter-drop', target: 'dead-letter:1', by: 'token:noc (cli:alice)', outcome: 'done', detail: 'not needed' });
    const asked: string[] = [];
    const broker = { queueInfo: async (q: string): Promise<QueueInfo | null> => (asked.push(q), { messages: 3, consumers: 1 }) };
    const s = await statusOf(store, broker, 'baton');
    expect(s).toMatchObject({ assignment: { agentId: 'a1', epoch: 1 }, parked: 1, deadLetters: 1, queueDepth: 3, switches: [] });
    expect(s.agents).toEqual([{ agentId: 'a1', topic: 'baton.agent.a1', host: 'h', status: 'up', lastHeartbeat: '2026-01-01T00:00:00.000Z', queueDepth: 3, consumers: 1 }]);
    expect(s.devices).toEqual([{ deviceId: 'd1', nextSeq: 6, watermark: 0 }]);
    expect(asked).toContain('baton.agent.a1');
    expect(statusText(s)[0]).toBe('active agent: a1 (epoch 1, phase normal, lock 0)');
    // the newest operator actions, from the audit table
    expect(s.audit).toMatchObject([{ action: 'dead-letter-drop', by: 'token:noc (cli:alice)' }]);
    expect(statusText(s).slice(-2)).toEqual([
      'operator actions (newest first; baton audit shows more):',
      '  2026-01-01T00:01:00.000Z dead-letter-drop dead-letter:1 by token:noc (cli:alice): done (not needed)',
    ]);
  });
});
