/** `baton agent-key ID`: prints one agent's credential, derived from the deployment secret. */
import { isId, resolveRuntimeConfig } from '../../config.ts';
import { BatonError } from '../../errors.ts';
import { printable } from '../../printable.ts';
import { agentCredential } from '../../trust.ts';
import { out, type Command } from './command.ts';
import { env } from './environment.ts';

export const agentKey: Command = {
  summary: 'print the credential of one agent, derived from the deployment secret',
  usage: 'baton agent-key ID\n  env: BATON_SECRET or BATON_SECRET_FILE (the deployment secret)\n  give the line to agent ID only, as BATON_AGENT_KEY (or in a file named by BATON_AGENT_KEY_FILE)',
  options: {},
  positionals: true,
  async run(_v, positionals = []) {
    const [id, extra] = positionals;
    if (!id || extra !== undefined) throw new BatonError('invalid-config', 'usage: baton agent-key ID (one agent id)');
    if (!isId(id)) throw new BatonError('invalid-config', `"${printable(id)}" is not an agent id (a letter or digit, then letters, digits, ".", "_" or "-", at most 64)`);
    // the same checks as a runtime's: a missing or short secret is refused, saying how to make one
    const { secret } = resolveRuntimeConfig({ devices: ['x'], ...(env.secret ? { secret: env.secret } : {}), ...(env.secretFile ? { secretFile: env.secretFile } : {}) });
    out(agentCredential(secret, id));
  },
};
