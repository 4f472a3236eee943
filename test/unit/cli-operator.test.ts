// The operator's commands (baton pause, resume, unblock, dead-letters, handover, wait, audit) against a
// fake inspector: the request each sends (route, JSON body, X-Baton-By: cli:<user>, the token), what
// each prints, and a runtime's refusal carried to the operator with its code and words.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEntry, DeadLetterView } from '../../src/api.ts';
import { commandTable, runCli } from '../../src/tools/cli/main.ts';
import { cliUser } from '../../src/tools/cli/inspector-client.ts';

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A fake inspector answering each request with `answer(seen)`: [status, JSON]. */
async function fakeInspector(answer: (s: Seen) => [number, unknown]) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const s = { method: req.method!, url: req.url!, headers: req.headers, body };
      seen.push(s);
      const [status, json] = answer(s);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen };
}

/** Runs `baton <argv>` in-process: its exit code (or error) and what it printed. */
async function baton(argv: string[]): Promise<{ code?: number; error?: Error & { code?: string }; lines: string[] }> {
  const lines: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => (lines.push(...String(chunk).split('\n').filter(Boolean)), true)) as typeof process.stdout.write;
  try {
    return { code: await runCli(argv, commandTable()), lines };
  } catch (error) {
    return { error: error as Error, lines };
  } finally {
    process.stdout.write = write;
  }
}

const done = (action: string, target: string, detail: string) => [200, { action, target, outcome: 'done', detail, auditId: 4 }] as [number, unknown];

describe('baton pause / resume / unblock / handover', () => {
  it('POST their action as JSON, saying who asks, and print the runtime\'s words', async () => {
    const f = await fakeInspector((s) => done('pause', 'fw1', `did ${s.method} ${s.url} ${s.body}`));
    const r = await baton(['pause', 'fw1', '--url', f.url, '--token', 't0k']);
    expect(r).toEqual({ code: 0, lines: ['done: did POST /api/devices/fw1/pause {} (audit #4)'] });
    expect(f.seen[0]!.headers).toMatchObject({ 'content-type': 'application/json', 'x-baton-by': cliUser(), authorization: 'Bearer t0k' });
    expect(cliUser()).toMatch(/^cli:/);
    await baton(['resume', 'fw 1', '--url', f.url]);
    await baton(['unblock', 'fw1', '--retry', '--url', f.url]);
    await baton(['unblock', 'fw1', '--skip', '--url', f.url]);
    await baton(['handover', '--to', 'a2', '--url', f.url]);
    await baton(['handover', '--url', f.url]);
    expect(f.seen.slice(1).map((s) => `${s.url} ${s.body}`)).toEqual([
      '/api/devices/fw%201/resume {}',
      '/api/devices/fw1/unblock {"action":"retry"}',
      '/api/devices/fw1/unblock {"action":"skip"}',
      '/api/handover {"to":"a2"}',
      '/api/handover {}',
    ]);
  });

  it('unblock needs exactly one of --retry and --skip; pause needs one device; nothing is sent otherwise', async () => {
    const f = await fakeInspector(() => done('pause', 'fw1', 'x'));
    expect((await baton(['unblock', 'fw1', '--url', f.url])).error?.message).toContain('--retry (send the refused message again, once the device accepts it) or --skip');
    expect((await baton(['unblock', 'fw1', '--retry', '--skip', '--url', f.url])).error?.code).toBe('invalid-request');
    expect((await baton(['pause', '--url', f.url])).error?.message).toBe('give exactly one device id: baton pause DEVICE');
    expect(f.seen).toEqual([]);
  });

  it('a refusal of the runtime is thrown with its code and its words', async () => {
    const f = await fakeInspector(() => [409, { error: { code: 'not-blocked', message: 'device fw1 is flowing: there is nothing to unblock' } }]);
    const r = await baton(['unblock', 'fw1', '--skip', '--url', f.url]);
    expect(r.error).toMatchObject({ code: 'not-blocked', message: 'device fw1 is flowing: there is nothing to unblock' });
  });

  it('says what to check when nothing answers, or the token is missing', async () => {
    const f = await fakeInspector(() => [401, {}]);
    expect((await baton(['pause', 'fw1', '--url', f.url])).error?.message).toBe(`the inspector at ${f.url}api/devices/fw1/pause wants a token: give it with --token or BATON_INSPECTOR_TOKEN`);
    await new Promise((r) => servers.pop()!.close(r));
    const r = await baton(['pause', 'fw1', '--url', f.url]);
    expect(r.error?.code).toBe('timeout');
    expect(r.error?.message).toContain(`nothing answers at ${f.url}api/devices/fw1/pause`);
  });
});

const DL: DeadLetterView = {
  id: 3, deviceId: 'fw1', seq: 2, epoch: 1, agentId: 'a1', reason: 'device rejected the message (422)', status: 422, response: 'vlan 4095 is reserved',
  payload: JSON.stringify({ deviceId: 'fw1', seq: 2, method: 'PUT', path: '/vlan/2', body: { id: 4095 }, key: 'k' }), at: Date.UTC(2026, 11, 3, 6, 0, 0), resolution: null,
};

describe('baton dead-letters', () => {
  it('lists with the filters as a table; shows one with the answer and the message; resends; drops with a reason', async () => {
    const f = await fakeInspector((s) => {
      if (s.method === 'GET') return [200, s.url.startsWith('/api/dead-letters/3') ? DL : [DL, { ...DL, id: 2, seq: 1, resolution: { kind: 'resent', by: 'cli:bob', at: 0, detail: '', seq: 9 } }]];
      return s.url.endsWith('/resend') ? [200, { ...done('dead-letter-resend', 'dead-letter:3', 'dead letter 3 (device fw1, seq 2) resent as seq 7, at the end of the device\'s line')[1] as object, seq: 7 }] : done('dead-letter-drop', 'dead-letter:3', 'dropped');
    });
    const list = await baton(['dead-letters', '--device', 'fw1', '--reason', '422', '--open', '--url', f.url]);
    expect(f.seen[0]!.url).toBe('/api/dead-letters?device=fw1&reason=422&open=true');
    expect(list.lines[0]).toMatch(/^ID\s+DEVICE\s+SEQ\s+AT\s+STATUS\s+REASON\s+NOW$/);
    expect(list.lines[1]).toMatch(/^3\s+fw1\s+2\s+2026-12-03 06:00:00\s+422\s+device rejected the message \(422\)\s+open$/);
    expect(list.lines[2]).toMatch(/resent as seq 9 by cli:bob$/);
    const show = await baton(['dead-letters', 'show', '3', '--url', f.url]);
    expect(show.lines).toEqual([
      'dead letter 3: device fw1, seq 2 (epoch 1, agent a1), at 2026-12-03 06:00:00',
      'reason:   device rejected the message (422)',
      'answer:   422 vlan 4095 is reserved',
      'message:  PUT /vlan/2 (key k) {"id":4095}',
      'now:      open',
    ]);
    expect((await baton(['dead-letters', 'resend', '3', '--url', f.url])).lines).toEqual(['done: dead letter 3 (device fw1, seq 2) resent as seq 7, at the end of the device\'s line (audit #4)']);
    await baton(['dead-letters', 'drop', '3', '--reason', 'not needed', '--url', f.url]);
    expect(f.seen.slice(2).map((s) => `${s.method} ${s.url} ${s.body}`)).toEqual(['POST /api/dead-letters/3/resend {}', 'POST /api/dead-letters/3/drop {"reason":"not needed"}']);
  });

  it('a drop without --reason, a bad id or an unknown sub-command sends nothing', async () => {
    const f = await fakeInspector(() => [200, []]);
    expect((await baton(['dead-letters', 'drop', '3', '--url', f.url])).error?.message).toBe('a drop needs --reason TEXT: why it is not sent (the audit keeps it); nothing was dropped');
    expect((await baton(['dead-letters', 'resend', 'x', '--url', f.url])).error?.code).toBe('invalid-request');
    expect((await baton(['dead-letters', 'purge', '--url', f.url])).error?.message).toContain('no such sub-command "purge"');
    expect(f.seen).toEqual([]);
    expect((await baton(['dead-letters', '--open', '--url', f.url])).lines).toEqual(['no dead letters open']);
  });
});

describe('baton wait and baton audit', () => {
  it('wait sends its device and timeout and prints drained; a timeout carries the runtime\'s words', async () => {
    let answer: [number, unknown] = [200, { drained: true, deviceId: 'fw1' }];
    const f = await fakeInspector(() => answer);
    expect((await baton(['wait', '--device', 'fw1', '--timeout', '5000', '--url', f.url])).lines).toEqual(['drained: everything accepted so far for fw1 is applied or dead-lettered']);
    expect(JSON.parse(f.seen[0]!.body)).toEqual({ deviceId: 'fw1', timeoutMs: 5000 });
    answer = [504, { error: { code: 'timeout', message: 'drained(): ... still outstanding: fw1: seq 4, line blocked' } }];
    expect((await baton(['wait', '--url', f.url])).error).toMatchObject({ code: 'timeout', message: 'drained(): ... still outstanding: fw1: seq 4, line blocked' });
    expect(JSON.parse(f.seen[1]!.body)).toEqual({ timeoutMs: 60_000 });
  });

  it('audit prints the rows as a table, newest first as the runtime gives them', async () => {
    const rows: AuditEntry[] = [{ id: 2, at: Date.UTC(2026, 11, 3, 7, 0, 0), action: 'pause', target: 'fw1', by: 'token:noc (cli:alice)', outcome: 'done', detail: 'fw1 paused' }];
    const f = await fakeInspector(() => [200, rows]);
    const r = await baton(['audit', '--limit', '5', '--url', f.url]);
    expect(f.seen[0]!.url).toBe('/api/audit?limit=5');
    expect(r.lines[1]).toMatch(/^2\s+2026-12-03 07:00:00\s+pause\s+fw1\s+token:noc \(cli:alice\)\s+done\s+fw1 paused$/);
  });
});
