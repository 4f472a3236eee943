import { defineConfig } from 'vitest/config';

const failover = ['test/int/failover*.int.test.ts'];

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      // no service: machines, lanes, wire, config, the simulation, the in-memory contract halves (`npm run test:unit`)
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], maxWorkers: 2, sequence: { groupOrder: 0 } } },
      // the real PostgreSQL and RabbitMQ: two files at a time
      { extends: true, test: { name: 'int', include: ['test/int/**/*.test.ts'], exclude: failover, maxWorkers: 2, sequence: { groupOrder: 1 } } },
      // failover tests measure detection and handover times: one file at a time, after the rest
      { extends: true, test: { name: 'failover', include: failover, maxWorkers: 1, fileParallelism: false, sequence: { groupOrder: 2 } } },
      // bundled scenarios restart RabbitMQ and PostgreSQL: alone, last
      { extends: true, test: { name: 'scenarios', include: ['test/scenarios/*.test.ts'], maxWorkers: 1, fileParallelism: false, sequence: { groupOrder: 3 } } },
    ],
  },
});
