// Every bundled scenario, run for real (agents and runtimes as processes, the real services), must
// pass its checks. They run one at a time, after everything else: some restart RabbitMQ or PostgreSQL.
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { htmlReport, summary } from '../../src/tools/scenario/report.ts';
import { runScenario } from '../../src/tools/scenario/runner.ts';
import { loadScenario } from '../../src/tools/scenario/schema.ts';
import { AMQP_URL, DATABASE_URL } from '../support/services.ts';
import { management, requireItem } from '../support/preflight.ts';

const dir = fileURLToPath(new URL('../../scripts/scenarios/', import.meta.url));

describe('bundled scenarios', () => {
  it.each(readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')))('%s passes its checks', async (name) => {
    const s = loadScenario(`${dir}${name}.json`);
    if (s.managementApi) await requireItem(management);
    const report = await runScenario(s, { amqpUrl: AMQP_URL, databaseUrl: DATABASE_URL, logger: silentLogger() });
    mkdirSync('test-artifacts/scenarios', { recursive: true });
    writeFileSync(`test-artifacts/scenarios/${name}.html`, htmlReport(report));
    console.log(summary(report));
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.ok).toBe(true);
  }, 300_000);
});
