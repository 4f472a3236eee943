/**
 * `baton devices`: how each device's line stands (blocked, paused, retrying, flowing, idle), read from a
 * running runtime's inspector (`/api/devices`), as a table or JSON.
 */
import type { DeviceView } from '../../api.ts';
import { BatonError } from '../../errors.ts';
import { printable, printableJson } from '../../printable.ts';
import { out, type Command } from './command.ts';
import { env } from './environment.ts';

/** where the inspector listens when started with `--inspect` and no port */
export const DEFAULT_INSPECTOR_URL = 'http://127.0.0.1:7070/';
const ASK_WITHIN_MS = 5000;

/** Reads `/api/devices` of the inspector at `base`; an error names the URL and what to check. */
export async function fetchDevices(base: string, token?: string): Promise<DeviceView[]> {
  let url: URL;
  try {
    url = new URL('api/devices', base.endsWith('/') ? base : `${base}/`);
  } catch {
    throw new BatonError('invalid-config', `--url ${JSON.stringify(base)} is not a URL (e.g. ${DEFAULT_INSPECTOR_URL})`);
  }
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(ASK_WITHIN_MS) });
  } catch (err) {
    const why = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new BatonError('timeout', `nothing answers at ${url} (${why}): is a runtime running with its inspector on? Start it with createRuntime({ inspector: { port } }) (or --inspect), and give its address with --url or BATON_INSPECTOR_URL`);
  }
  const body = await res.text();
  if (res.status === 401) throw new BatonError('invalid-config', `the inspector at ${url} wants a token: give it with --token or BATON_INSPECTOR_TOKEN`);
  if (res.status === 404) throw new BatonError('invalid-config', `the server at ${url} has no device view (404): is it a baton inspector of a runtime that knows /api/devices?`);
  if (res.status !== 200) throw new BatonError('timeout', `the inspector at ${url} answered ${res.status}: ${printable(body.slice(0, 300))}`);
  try {
    return JSON.parse(body) as DeviceView[];
  } catch {
    throw new BatonError('invalid-config', `the server at ${url} did not answer JSON: is it a baton inspector?`);
  }
}

const age = (ms: number | null) =>
  ms === null ? '-' : ms < 1000 ? `${Math.round(ms)} ms` : ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms < 600_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
const clockOf = (ms: number) => (ms > 0 ? ` since ${new Date(ms).toISOString().slice(11, 19)}` : '');

/** What the state means for the operator, in one cell. */
function detail(v: DeviceView): string {
  if (v.blocked) {
    const b = v.blocked;
    const answer = `${b.status !== null ? `status ${b.status}` : 'no status'}${b.response ? `: ${b.response.replace(/\s+/g, ' ').slice(0, 120)}` : ''}`;
    return `seq ${b.seq} refused (${answer})${clockOf(b.since)}; to free: baton unblock ${v.deviceId} --retry (after fixing the device) or --skip`;
  }
  if (v.state === 'paused') return `paused: its messages are kept, none is sent; to free: baton resume ${v.deviceId}`;
  if (v.retrying) return `retrying seq ${v.retrying.seq} (attempt ${v.retrying.attempt}: ${v.retrying.reason})${clockOf(v.retrying.since)}`;
  return v.lastError ? `last error: ${v.lastError.text}` : '';
}

/** The table `baton devices` prints, one line a device under a header. */
export function devicesTable(views: DeviceView[]): string[] {
  const rows = [
    ['DEVICE', 'STATE', 'NEXT', 'WATERMARK', 'LAG', 'OLDEST', 'DEAD', 'AGENT', 'DETAIL'],
    ...views.map((v) => [v.deviceId, v.state, v.nextSeq ?? '-', v.watermark, v.lag ?? '-', age(v.oldestUnappliedMs), v.deadLetters, v.agentId ?? '-', detail(v)].map((c) => printable(String(c)))),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

export const devices: Command = {
  summary: "show each device's line (blocked, paused, retrying, flowing, idle), its seqs, lag and last error, from a running runtime",
  usage: `baton devices [--json] [--url URL] [--token T]\n  --url: the runtime's inspector (default ${DEFAULT_INSPECTOR_URL})\n  env: BATON_INSPECTOR_URL, BATON_INSPECTOR_TOKEN`,
  options: { json: { type: 'boolean' }, url: { type: 'string' }, token: { type: 'string' } },
  async run(v) {
    const views = await fetchDevices((v.url as string | undefined) ?? env.inspectorUrl ?? DEFAULT_INSPECTOR_URL, (v.token as string | undefined) ?? env.inspectorToken);
    if (v.json) return void out(printableJson(JSON.stringify(views, null, 2)));
    if (views.length === 0) return void out('no devices configured');
    for (const line of devicesTable(views)) out(line);
  },
};
