import { defineConfig } from 'vitest/config';

const failover = ['test/int/failover*.int.test.ts'];
const scenarios = ['test/scenarios/*.test.ts'];

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      // unit, contract and integration tests: two files at a time
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'], exclude: [...failover, ...scenarios], maxWorkers: 2, sequence: { groupOrder: 0 } } },
      // failover tests measure detection and handover times: one file at a time, after the rest
      { extends: true, test: { name: 'failover', include: failover, maxWorkers: 1, fileParallelism: false, sequence: { groupOrder: 1 } } },
      // bundled scenarios restart RabbitMQ and PostgreSQL: alone, last
      { extends: true, test: { name: 'scenarios', include: scenarios, maxWorkers: 1, fileParallelism: false, sequence: { groupOrder: 2 } } },
    ],
  },
});
