// A device simulator in a process of its own, for handover-planned: a real device is another host,
// and an in-process one would answer only when the benchmark's runtime (busy replaying, signing,
// publishing) lets it, which a pause measured at the device would wrongly count. It accepts stale
// epochs (a stale write would be applied, and counted) and prints its URL; SIGTERM closes it.
// serve-throughput runs its devices here too, so they take no time from the process it measures.
// Usage: node --import tsx scripts/bench/device-process.ts [COUNT] (COUNT simulators, their URLs on one line)
import { startDeviceSimulator } from '../../src/devices/simulator.ts';

const sims = await Promise.all(Array.from({ length: Number(process.argv[2] ?? 1) }, () => startDeviceSimulator({ fencing: false })));
process.stdout.write(`${sims.map((s) => s.url).join(' ')}\n`);
process.once('SIGTERM', () => void Promise.all(sims.map((s) => s.close())).finally(() => process.exit(0)));
