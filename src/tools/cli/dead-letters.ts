/**
 * `baton dead-letters`: the messages devices refused for good, read and settled through a running
 * runtime's inspector: list them (by device, by reason, the open ones), show one with the device's
 * answer, resend one (a new message at the end of the device's line, with a new seq), drop one with
 * a reason.
 */
import type { ActionResult, DeadLetterView } from '../../api.ts';
import { BatonError } from '../../errors.ts';
import { printable, printableJson } from '../../printable.ts';
import { num, out, type Command, type CommandValues } from './command.ts';
import { actionLine, ask, TARGET_OPTIONS, TARGET_USAGE, targetOf } from './inspector-client.ts';
import { table } from './table.ts';

const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
const oneLine = (s: string, n: number) => s.replace(/\s+/g, ' ').slice(0, n);

/** How a dead letter stands, in a few words: open, or how it was settled and by whom. */
export function settledAs(d: DeadLetterView): string {
  const r = d.resolution;
  if (!r) return 'open';
  return `${r.kind}${r.kind === 'resent' && r.seq !== undefined ? ` as seq ${r.seq}` : ''} by ${r.by}${r.kind === 'dropped' ? `: ${oneLine(r.detail, 60)}` : ''}`;
}

/** The table `baton dead-letters` prints. */
export function deadLettersTable(list: DeadLetterView[]): string[] {
  return table([
    ['ID', 'DEVICE', 'SEQ', 'AT', 'STATUS', 'REASON', 'NOW'],
    ...list.map((d) => [d.id, d.deviceId, d.seq, when(d.at), d.status ?? '-', oneLine(d.reason, 60), settledAs(d)].map(String)),
  ]);
}

/** What `baton dead-letters show ID` prints: every field, the device's answer and the message. */
export function deadLetterDetail(d: DeadLetterView): string[] {
  let message = d.payload;
  try {
    const m = JSON.parse(d.payload) as { method?: string; path?: string; body?: unknown; key?: string };
    message = `${m.method} ${m.path}${m.key ? ` (key ${m.key})` : ''} ${JSON.stringify(m.body ?? null)}`;
  } catch {
    // not JSON: a message the agent could not read, shown as it came
  }
  return [
    `dead letter ${d.id}: device ${d.deviceId}, seq ${d.seq} (epoch ${d.epoch}, agent ${d.agentId}), at ${when(d.at)}`,
    `reason:   ${d.reason}`,
    `answer:   ${d.status ?? 'no status'}${d.response ? ` ${oneLine(d.response, 500)}` : ''}`,
    `message:  ${oneLine(message, 1000)}`,
    `now:      ${settledAs(d)}${d.resolution ? ` at ${when(d.resolution.at)} (${oneLine(d.resolution.detail, 200)})` : ''}`,
  ].map(printable);
}

/** The id of `show`, `resend` and `drop`. */
function idArg(rest: string[], usage: string): number {
  const [id, ...more] = rest;
  const n = Number(id);
  if (!id || more.length || !Number.isSafeInteger(n) || n < 1) throw new BatonError('invalid-request', `give one dead letter id (a number, as baton dead-letters lists them): ${usage}`);
  return n;
}

async function list(v: CommandValues): Promise<void> {
  const q = new URLSearchParams();
  if (v.device) q.set('device', v.device as string);
  if (v.reason) q.set('reason', v.reason as string);
  if (v.open) q.set('open', 'true');
  const limit = num(v.limit, 'limit');
  if (limit !== undefined) q.set('limit', String(limit));
  const found = await ask<DeadLetterView[]>(targetOf(v), 'GET', `/api/dead-letters${q.size ? `?${q}` : ''}`);
  if (v.json) return void out(printableJson(JSON.stringify(found, null, 2)));
  if (found.length === 0) return void out(`no dead letters${v.open ? ' open' : ''}${v.device ? ` for ${printable(v.device as string)}` : ''}`);
  for (const line of deadLettersTable(found)) out(line);
}

const USAGE = [
  'baton dead-letters [--device D] [--reason TEXT] [--open] [--limit N] [--json]   list them, newest first',
  '       baton dead-letters show ID [--json]       one, with the device\'s answer and the message',
  '       baton dead-letters resend ID              send it again: a new message at the end of the device\'s line, with a new seq',
  '       baton dead-letters drop ID --reason TEXT  settle it without sending it (the reason goes in the audit)',
  TARGET_USAGE,
].join('\n');

export const deadLetters: Command = {
  summary: 'list, show, resend or drop the messages devices refused for good',
  usage: USAGE,
  options: { device: { type: 'string' }, reason: { type: 'string' }, open: { type: 'boolean' }, limit: { type: 'string' }, json: { type: 'boolean' }, ...TARGET_OPTIONS },
  positionals: true,
  async run(v, positionals = []) {
    const [sub, ...rest] = positionals;
    const t = targetOf(v);
    switch (sub) {
      case undefined:
      case 'list':
        return list(v);
      case 'show': {
        const d = await ask<DeadLetterView>(t, 'GET', `/api/dead-letters/${idArg(rest, 'baton dead-letters show ID')}`);
        for (const line of v.json ? [printableJson(JSON.stringify(d, null, 2))] : deadLetterDetail(d)) out(line);
        return;
      }
      case 'resend': {
        const r = await ask<ActionResult & { seq: number }>(t, 'POST', `/api/dead-letters/${idArg(rest, 'baton dead-letters resend ID')}/resend`);
        return void out(actionLine(r));
      }
      case 'drop': {
        const id = idArg(rest, 'baton dead-letters drop ID --reason TEXT');
        if (typeof v.reason !== 'string' || !v.reason.trim()) throw new BatonError('invalid-request', 'a drop needs --reason TEXT: why it is not sent (the audit keeps it); nothing was dropped');
        return void out(actionLine(await ask<ActionResult>(t, 'POST', `/api/dead-letters/${id}/drop`, { reason: v.reason })));
      }
      default:
        throw new BatonError('invalid-request', `no such sub-command "${printable(sub)}": ${USAGE.split('\n')[0]}, or show, resend, drop`);
    }
  },
};
