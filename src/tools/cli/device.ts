/** `baton device`: a simulated network device (HTTP config API) in the foreground, until Ctrl-C. */
import { startDeviceSimulator } from '../../devices/simulator.ts';
import { num, out, untilSignal, type Command } from './command.ts';

export const device: Command = {
  summary: 'run a simulated network device (HTTP config API)',
  usage: 'baton device [--port P] [--host H] [--latency MS] [--error-rate R] [--error-status S]',
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    latency: { type: 'string' },
    'error-rate': { type: 'string' },
    'error-status': { type: 'string' },
  },
  async run(v) {
    const faults = {
      ...(v.latency !== undefined ? { latencyMs: num(v.latency, 'latency')! } : {}),
      ...(v['error-rate'] !== undefined ? { errorRate: num(v['error-rate'], 'error-rate')! } : {}),
      ...(v['error-status'] !== undefined ? { errorStatus: num(v['error-status'], 'error-status')! } : {}),
    };
    const sim = await startDeviceSimulator({ port: num(v.port, 'port') ?? 8181, host: (v.host as string) ?? '127.0.0.1', faults });
    out(`device simulator listening on ${sim.url}`);
    out(`  config writes: PUT/POST/PATCH/DELETE ${sim.url}/policies/p1, ${sim.url}/policies/p1/rules/r1`);
    out(`  applied log: GET ${sim.url}/_sim/log   watermark: GET ${sim.url}/watermark   faults: POST ${sim.url}/_sim/faults`);
    sim.events.on('applied', (e) => out(`applied seq=${e.seq ?? '-'} epoch=${e.epoch ?? '-'} ${e.method} ${e.path}`));
    sim.events.on('refused', (e) => out(`refused ${e.status} ${e.path}: ${e.reason}`));
    await untilSignal();
    await sim.close();
  },
};
