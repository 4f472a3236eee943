/** `baton status`: the active agent, epoch, parked messages, queue depth, agents and devices, as text or JSON. */
import { readStatus, statusJson, statusText } from '../status.ts';
import { out, type Command } from './command.ts';
import { env, services } from './environment.ts';

export const status: Command = {
  summary: 'show the active agent, epoch, parked messages, queue depth, agents and devices',
  usage: 'baton status [--json] [--namespace NS]\n  env: BATON_AMQP_URL, BATON_DATABASE_URL',
  options: { json: { type: 'boolean' }, namespace: { type: 'string' } },
  async run(v) {
    const s = await readStatus({
      ...services,
      namespace: (v.namespace as string) ?? env.namespace ?? 'baton',
    });
    if (v.json) {
      out(statusJson(s));
      return;
    }
    for (const line of statusText(s)) out(line);
  },
};
