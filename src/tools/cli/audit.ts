/** `baton audit`: the operator actions a running runtime recorded (what, on what, by whom, when, the outcome), newest first. */
import type { AuditEntry } from '../../api.ts';
import { printableJson } from '../../printable.ts';
import { num, out, type Command } from './command.ts';
import { ask, TARGET_OPTIONS, TARGET_USAGE, targetOf } from './inspector-client.ts';
import { table } from './table.ts';

/** The table `baton audit` prints. */
export function auditTable(entries: AuditEntry[]): string[] {
  return table([
    ['ID', 'AT', 'ACTION', 'TARGET', 'BY', 'OUTCOME', 'DETAIL'],
    ...entries.map((e) => [e.id, new Date(e.at).toISOString().replace('T', ' ').slice(0, 19), e.action, e.target, e.by, e.outcome, e.detail.replace(/\s+/g, ' ')].map(String)),
  ]);
}

export const audit: Command = {
  summary: 'show the operator actions recorded (pause, resume, unblock, dead letters, handover), newest first',
  usage: `baton audit [--limit N] [--json] [--url URL] [--token T]\n${TARGET_USAGE}`,
  options: { limit: { type: 'string' }, json: { type: 'boolean' }, ...TARGET_OPTIONS },
  async run(v) {
    const limit = num(v.limit, 'limit');
    const entries = await ask<AuditEntry[]>(targetOf(v), 'GET', `/api/audit${limit !== undefined ? `?limit=${limit}` : ''}`);
    if (v.json) return void out(printableJson(JSON.stringify(entries, null, 2)));
    if (entries.length === 0) return void out('no operator action recorded yet');
    for (const line of auditTable(entries)) out(line);
  },
};
