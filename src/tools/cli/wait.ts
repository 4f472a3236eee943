/** `baton wait [--device D] [--timeout MS]`: returns once everything accepted so far is applied or dead-lettered (for maintenance scripts). */
import { out, num, type Command } from './command.ts';
import { ask, TARGET_OPTIONS, TARGET_USAGE, targetOf } from './inspector-client.ts';

const DEFAULT_TIMEOUT_MS = 60_000;

export const wait: Command = {
  summary: 'wait until everything accepted so far (for one device, or all) is applied or dead-lettered; exits 1 on timeout, naming what is left',
  usage: `baton wait [--device D] [--timeout MS] [--url URL] [--token T]\n  --timeout: give up after this many ms (default ${DEFAULT_TIMEOUT_MS})\n${TARGET_USAGE}`,
  options: { device: { type: 'string' }, timeout: { type: 'string' }, ...TARGET_OPTIONS },
  async run(v) {
    const deviceId = v.device as string | undefined;
    const timeoutMs = num(v.timeout, 'timeout') ?? DEFAULT_TIMEOUT_MS;
    await ask(targetOf(v), 'POST', '/api/wait', { ...(deviceId ? { deviceId } : {}), timeoutMs }, timeoutMs);
    out(`drained: everything accepted so far${deviceId ? ` for ${deviceId}` : ''} is applied or dead-lettered`);
  },
};
