/** `baton handover [--to AGENT]`: a planned handover of the stream to another agent, through a running runtime's inspector. */
import type { ActionResult } from '../../api.ts';
import { out, type Command } from './command.ts';
import { actionLine, ask, TARGET_OPTIONS, TARGET_USAGE, targetOf } from './inspector-client.ts';

/** A handover takes a device round trip and the move of the queue: more than an ordinary request. */
const HANDOVER_WAIT_MS = 120_000;

export const handover: Command = {
  summary: 'move the stream to another agent on purpose: the active one finishes what is on the wire and gives its lease back',
  usage: `baton handover [--to AGENT] [--url URL] [--token T]\n  --to: the agent to take over (default: the healthiest idle one)\n${TARGET_USAGE}`,
  options: { to: { type: 'string' }, ...TARGET_OPTIONS },
  async run(v) {
    const to = v.to as string | undefined;
    out(actionLine(await ask<ActionResult>(targetOf(v), 'POST', '/api/handover', to ? { to } : {}, HANDOVER_WAIT_MS)));
  },
};
