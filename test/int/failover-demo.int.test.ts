// `npm run demo` (smaller): the handover is shown and every check holds.
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/tools/demo.ts';
import { silentLogger } from '../../src/logger.ts';
import { AMQP_URL, DATABASE_URL } from '../support/services.ts';

describe('baton demo', () => {
  it('kills the active agent mid-load, shows the handover, and every device checks out', async () => {
    const lines: string[] = [];
    const r = await runDemo({ devices: 2, agents: 2, messages: 1500, rate: 1000, killAt: 0.4, amqpUrl: AMQP_URL, databaseUrl: DATABASE_URL, logger: silentLogger(), out: (l) => lines.push(l) });
    const text = lines.join('\n');
    expect(r.ok).toBe(true);
    expect(r.figures.switches).toBe(1);
    expect(r.figures.killToResumeMs).toBeGreaterThan(0);
    expect(text).toMatch(/fault +kill -9 demo-agent-\d/);
    expect(text).toMatch(/switch +completed: demo-agent-\d is the active agent, epoch 2/);
    expect(text).toMatch(/every device applied every message once, in order, with no stale write/);
    expect(r.checks.every((c) => c.missing === 0 && c.duplicates === 0 && c.outOfOrder === 0 && c.staleWrites === 0)).toBe(true);
  });
});
