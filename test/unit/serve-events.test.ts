// GET /v1/events over real HTTP, with a journal double: each event carries its journal id, a client
// resumes after Last-Event-ID, a journal that no longer holds that point refuses it in the error shape
// before the stream opens, and without a journal the route answers 501 not-built.
import { request, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { BatonError } from '../../src/errors.ts';
import type { FollowedEntry, JournalEntry } from '../../src/api.ts';
import type { EventJournal } from '../../src/serve/runtime-ports.ts';
import { startServer, type BatonServer } from '../../src/serve/server.ts';
import { runtimeDouble, stillClock } from '../support/serve-double.ts';
import { readSse } from '../support/sse.ts';

const servers: BatonServer[] = [];
const open: IncomingMessage[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) r.destroy();
  for (const s of servers.splice(0)) await s.close();
});

/** A journal of the events appended so far; followers get the past after their id, then what comes. */
function journal(oldest = 1) {
  const events: FollowedEntry[] = [];
  const followers = new Set<(e: FollowedEntry) => void>();
  const n = (id: string) => Number(id.split('-')[1]); // ids are <term>-<n>: term 1 here
  let onLeave: (() => void) | null = null;
  /** resolves when a follower next stops following */
  const left = () => new Promise<void>((r) => (onLeave = r));
  const j: EventJournal = {
    follow(after, listener) {
      if (after !== null && n(after) < oldest - 1) throw new BatonError('invalid-request', `the journal no longer holds the events after ${after}: read the state again, then follow from now`);
      for (const e of events) if (after !== null && n(e.id) > n(after)) listener(e);
      followers.add(listener);
      return () => {
        followers.delete(listener);
        onLeave?.();
      };
    },
  };
  const append = (type: JournalEntry['type'], data: unknown) => {
    const e = { id: `1-${events.length + 1}`, type, data: data as JournalEntry };
    events.push(e);
    for (const f of followers) f(e);
  };
  return { j, append, followers, left };
}

async function serveWith(j?: EventJournal) {
  const server = await startServer(runtimeDouble().runtime, { keys: createMemoryStore(), port: 0, clock: stillClock, ports: j ? { journal: j } : {} });
  servers.push(server);
  return server;
}

/** An SSE client: its status, and the events parsed as they come (a wait for the n-th). */
function follow(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: () => string; ended: Promise<void>; events: Array<{ id: string; event: string; data: unknown }>; until(n: number): Promise<void> }>((resolve, reject) => {
    request(new URL('v1/events', url), { headers, agent: false }, (res) => {
      open.push(res);
      const events: Array<{ id: string; event: string; data: unknown }> = [];
      const ended = new Promise<void>((r) => res.on('end', r));
      const waiters: Array<() => void> = [];
      const sse = readSse(res, (f) => {
        if (f.event) events.push({ id: f.id!, event: f.event, data: JSON.parse(f.data!) });
        for (const w of waiters.splice(0)) w();
      });
      const until = (n: number): Promise<void> => (events.length >= n ? Promise.resolve() : new Promise<void>((r) => waiters.push(r)).then(() => until(n)));
      resolve({ status: res.statusCode!, body: sse.rest, ended, events, until });
    }).on('error', reject).end();
  });
}

describe('GET /v1/events', () => {
  it('streams each event with its journal id, and resumes after Last-Event-ID', async () => {
    const { j, append, followers, left } = journal();
    const server = await serveWith(j);
    const a = await follow(server.url);
    expect(a.status).toBe(200);
    append('applied', { deviceId: 'fw1', seq: 1 });
    append('switch', { phase: 'draining' });
    await a.until(2);
    expect(a.events).toEqual([{ id: '1-1', event: 'applied', data: { deviceId: 'fw1', seq: 1 } }, { id: '1-2', event: 'switch', data: { phase: 'draining' } }]);
    append('alarm', { raised: 'no-healthy-agent' });
    const b = await follow(server.url, { 'last-event-id': '1-1' });
    await b.until(2);
    expect(b.events.map((e) => e.id)).toEqual(['1-2', '1-3']);
    // the server lets go of a client that left
    const gone = left();
    open.pop()!.destroy();
    await gone;
    expect(followers.size).toBe(1);
  });

  it('refuses a Last-Event-ID the journal no longer holds (400, the error shape), and a malformed one', async () => {
    const server = await serveWith(journal(10).j);
    const r = await follow(server.url, { 'last-event-id': '1-3' });
    expect(r.status).toBe(400);
    await r.ended;
    expect(JSON.parse(r.body()).error.code).toBe('invalid-request');
    expect((await follow(server.url, { 'last-event-id': 'abc' })).status).toBe(400);
  });

  it('answers 501 not-built without the runtime\'s journal', async () => {
    const server = await serveWith();
    expect((await follow(server.url)).status).toBe(501);
  });
});
