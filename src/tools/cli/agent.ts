/**
 * `baton agent`: an agent process, consuming its queue and writing to its devices, until Ctrl-C or
 * SIGTERM. Told to stop while it is the active agent, it first asks the runtime to hand its stream
 * over to another agent (a planned handover: no duplicate, no stale write) and stops once it gave its
 * lease back; with no other agent to take over it stops after a few seconds, as after a failure. A
 * second Ctrl-C stops it at once.
 */
import { startAgent } from '../../agent/worker.ts';
import { loadDevicesFile } from '../../config.ts';
import { BatonError } from '../../errors.ts';
import { cliLogger } from '../../logger.ts';
import { num, out, untilSignal, type Command } from './command.ts';
import { env } from './environment.ts';

export const agent: Command = {
  summary: 'run an agent: consume its queue and push messages to the devices',
  usage:
    'baton agent --id ID --devices FILE [--namespace NS] [--prefetch N] [--on-permanent block|skip]\n' +
    '            [--queue-type classic|quorum] [--heartbeat-interval MS]\n' +
    '  env: BATON_AGENT_KEY or BATON_AGENT_KEY_FILE (its credential: `baton agent-key ID`),\n' +
    '       BATON_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672), BATON_LOG_LEVEL',
  options: {
    id: { type: 'string' },
    devices: { type: 'string' },
    namespace: { type: 'string' },
    prefetch: { type: 'string' },
    'on-permanent': { type: 'string' },
    'queue-type': { type: 'string' },
    'heartbeat-interval': { type: 'string' },
  },
  async run(v) {
    if (!v.id) throw new BatonError('invalid-config', 'baton agent needs --id ID (its queue is <namespace>.agent.<ID>)');
    if (!v.devices) throw new BatonError('invalid-config', 'baton agent needs --devices FILE (JSON: {"devices":[{"id":"fw1","url":"http://127.0.0.1:8181"}]})');
    const logger = cliLogger(env.logLevel, 'agent');
    const agent = await startAgent(
      {
        id: v.id as string,
        devices: loadDevicesFile(v.devices as string),
        ...(env.agentKey ? { key: env.agentKey } : {}),
        ...(env.agentKeyFile ? { keyFile: env.agentKeyFile } : {}),
        ...(env.amqpUrl ? { amqpUrl: env.amqpUrl } : {}),
        ...((v.namespace ?? env.namespace) ? { namespace: (v.namespace ?? env.namespace) as string } : {}),
        ...(v.prefetch !== undefined ? { prefetch: num(v.prefetch, 'prefetch')! } : {}),
        ...(v['on-permanent'] !== undefined ? { onPermanent: v['on-permanent'] as 'block' } : {}),
        ...(v['queue-type'] !== undefined ? { queueType: v['queue-type'] as 'classic' } : {}),
        ...(v['heartbeat-interval'] !== undefined ? { heartbeatInterval: num(v['heartbeat-interval'], 'heartbeat-interval')! } : {}),
      },
      { logger },
    );
    out(`agent ${agent.id} consuming ${agent.queue}`);
    const sig = await untilSignal();
    logger.info({ signal: sig }, 'stopping: finishing requests in flight, requeueing the rest');
    const how = await agent.leave();
    if (how === 'handed-over') out(`agent ${agent.id} handed its stream over and stopped`);
    else if (how === 'no-handover') out(`agent ${agent.id} stopped without a handover (no other agent took over): the stream fails over`);
  },
};
