/** `baton pause DEVICE` and `baton resume DEVICE`: a maintenance window on one device's line, through a running runtime's inspector. */
import type { ActionResult } from '../../api.ts';
import { BatonError } from '../../errors.ts';
import { out, type Command } from './command.ts';
import { actionLine, ask, TARGET_OPTIONS, TARGET_USAGE, targetOf } from './inspector-client.ts';

/** The one positional a device command takes, or a usage error naming it. */
export function deviceArg(positionals: string[] | undefined, usage: string): string {
  const [deviceId, ...more] = positionals ?? [];
  if (!deviceId || more.length) throw new BatonError('invalid-request', `give exactly one device id: ${usage}`);
  return deviceId;
}

function lineAction(verb: 'pause' | 'resume', summary: string): Command {
  const usage = `baton ${verb} DEVICE [--url URL] [--token T]\n${TARGET_USAGE}`;
  return {
    summary,
    usage,
    options: { ...TARGET_OPTIONS },
    positionals: true,
    async run(v, positionals) {
      const deviceId = deviceArg(positionals, `baton ${verb} DEVICE`);
      out(actionLine(await ask<ActionResult>(targetOf(v), 'POST', `/api/devices/${encodeURIComponent(deviceId)}/${verb}`)));
    },
  };
}

export const pause = lineAction('pause', "pause a device's line: its messages are kept durably, none is sent, until baton resume");
export const resume = lineAction('resume', 'resume a paused device: what was kept goes out in order, then new messages');
