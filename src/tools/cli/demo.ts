/** `baton demo`: devices, agents and a runtime in one command, with the active agent killed mid-load. */
import { BatonError } from '../../errors.ts';
import { cliLogger } from '../../logger.ts';
import { runDemo } from '../demo.ts';
import { num, out, type Command } from './command.ts';
import { env, services } from './environment.ts';

export const demo: Command = {
  summary: 'run devices, three agents and the runtime; kill the active agent mid-load and check every device',
  usage:
    'baton demo [--devices N] [--agents N] [--messages N] [--rate PER_SEC] [--kill-at SHARE | --no-kill] [--inspect [PORT]]\n' +
    '  env: BATON_AMQP_URL, BATON_DATABASE_URL (a throw-away database is created next to it), BATON_MANAGEMENT_URL',
  options: {
    devices: { type: 'string' },
    agents: { type: 'string' },
    messages: { type: 'string' },
    rate: { type: 'string' },
    'kill-at': { type: 'string' },
    'no-kill': { type: 'boolean' },
    inspect: { type: 'string' },
  },
  async run(v) {
    const abort = new AbortController();
    process.once('SIGINT', () => {
      out('\nstopping: removing the processes, queues and database this demo made');
      abort.abort();
    });
    const killAt = v['no-kill'] ? null : (num(v['kill-at'], 'kill-at') ?? 0.4);
    if (killAt !== null && (killAt <= 0 || killAt >= 1)) throw new BatonError('invalid-config', '--kill-at must be between 0 and 1 (a share of the load)');
    const { ok } = await runDemo({
      devices: num(v.devices, 'devices') ?? 4,
      agents: num(v.agents, 'agents') ?? 3,
      messages: num(v.messages, 'messages') ?? 6000,
      rate: num(v.rate, 'rate') ?? 1500,
      killAt,
      ...services,
      logger: cliLogger(env.logLevel ?? 'error', 'runtime'),
      out,
      signal: abort.signal,
      ...(v.inspect !== undefined ? { inspectPort: num(v.inspect, 'inspect')! } : {}),
    });
    return ok ? 0 : 1;
  },
};
