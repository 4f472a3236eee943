// A runtime in a process of its own, for crash tests: it dispatches a load, prints every message
// RabbitMQ or PostgreSQL accepted ("accepted <device> <seq>"), and kills itself with SIGKILL when
// a switch reaches the phase named by BATON_TEST_CRASH_AT, through the runtime's onPhase hook.
import { createRuntime } from '../../src/runtime/runtime.ts';
import { workloadMessage } from '../../src/tools/workload.ts';

const env = process.env;
const devices = JSON.parse(env.BATON_TEST_DEVICES!) as Array<{ id: string; fencesByEpoch: boolean }>;
const crashAt = env.BATON_TEST_CRASH_AT;
const count = Number(env.BATON_TEST_MESSAGES ?? 3000);

const runtime = createRuntime({
  devices,
  leaderTtl: 1000,
  onPhase: (phase) => {
    process.stdout.write(`phase ${phase}\n`);
    if (phase === crashAt) process.kill(process.pid, 'SIGKILL');
  },
});
await runtime.start();
const active = await runtime.ready({ timeoutMs: 20_000 });
process.stdout.write(`ready ${active.agentId}\n`);
let next = 0;
let sent = 0;
const perDevice = new Map<string, number>();
await Promise.all(
  Array.from({ length: 20 }, async () => {
    while (next < count) {
      const d = devices[next++ % devices.length]!;
      const k = perDevice.get(d.id) ?? 0;
      perDevice.set(d.id, k + 1);
      const r = await runtime.dispatch(workloadMessage(d.id, k));
      process.stdout.write(`accepted ${r.deviceId} ${r.seq}\n`);
      if (++sent % 500 === 0) process.stdout.write(`dispatched ${sent}\n`);
    }
  }),
);
process.stdout.write('all dispatched\n');
// keep running until killed (the switch is what this process is for)
await new Promise(() => {});
