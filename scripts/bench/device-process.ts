// A device simulator in a process of its own, for handover-planned: a real device is another host,
// and an in-process one would answer only when the benchmark's runtime (busy replaying, signing,
// publishing) lets it, which a pause measured at the device would wrongly count. It accepts stale
// epochs (a stale write would be applied, and counted) and prints its URL; SIGTERM closes it.
// Usage: node --import tsx scripts/bench/device-process.ts
import { startDeviceSimulator } from '../../src/devices/simulator.ts';

const sim = await startDeviceSimulator({ fencing: false });
process.stdout.write(`${sim.url}\n`);
process.once('SIGTERM', () => void sim.close().finally(() => process.exit(0)));
