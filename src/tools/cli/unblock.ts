/** `baton unblock DEVICE --retry|--skip`: frees a line the device blocked by refusing a message. */
import type { ActionResult } from '../../api.ts';
import { BatonError } from '../../errors.ts';
import { out, type Command } from './command.ts';
import { actionLine, ask, TARGET_OPTIONS, TARGET_USAGE, targetOf } from './inspector-client.ts';
import { deviceArg } from './pause.ts';

export const unblock: Command = {
  summary: 'free a blocked line: --retry sends the refused message again (fix the device first), --skip leaves it dead-lettered and goes on',
  usage: `baton unblock DEVICE --retry|--skip [--url URL] [--token T]\n${TARGET_USAGE}`,
  options: { retry: { type: 'boolean' }, skip: { type: 'boolean' }, ...TARGET_OPTIONS },
  positionals: true,
  async run(v, positionals) {
    const deviceId = deviceArg(positionals, 'baton unblock DEVICE --retry|--skip');
    if (Boolean(v.retry) === Boolean(v.skip)) throw new BatonError('invalid-request', 'say how to free the line: --retry (send the refused message again, once the device accepts it) or --skip (leave it dead-lettered and go on), one of them');
    out(actionLine(await ask<ActionResult>(targetOf(v), 'POST', `/api/devices/${encodeURIComponent(deviceId)}/unblock`, { action: v.retry ? 'retry' : 'skip' })));
  },
};
