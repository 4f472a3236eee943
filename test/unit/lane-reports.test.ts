// Issue 15, item 1: an agent says in its heartbeat which device lines do not flow, and why.
import { describe, expect, it } from 'vitest';
import { changedLines } from '../../src/runtime/agents.ts';
import { MAX_LANE_REPORTS, MAX_LANE_TEXT, parseHeartbeat } from '../../src/side-channel.ts';

const beat = (lanes: unknown) => ({ type: 'heartbeat', agentId: 'a1', host: 'h', pid: 1, sentAt: 1, beat: 3, incarnation: 'i', lanes });

describe('lane reports in heartbeats', () => {
  it('carries retrying and blocked lines with what the device answered', () => {
    const lanes = [
      { deviceId: 'fw1', state: 'blocked', seq: 7, status: 404, response: 'no such rule', reason: 'device answered 404', since: 5 },
      { deviceId: 'fw2', state: 'retrying', seq: 3, attempt: 4, reason: 'device answered 503', since: 6 },
    ];
    expect(parseHeartbeat(beat(lanes))).toMatchObject({ type: 'heartbeat', lanes });
  });

  it('a heartbeat without lanes is one whose lines all flow', () => {
    expect(parseHeartbeat(beat(undefined))).not.toHaveProperty('lanes');
  });

  it('refuses malformed or oversized reports, and cuts long texts', () => {
    expect(parseHeartbeat(beat([{ deviceId: 'fw1', state: 'stuck', seq: 1, reason: 'x' }]))).toMatchObject({ invalid: expect.stringMatching(/lane report/) });
    expect(parseHeartbeat(beat([{ deviceId: 'fw1', state: 'retrying', seq: -1, attempt: 1, reason: 'x' }]))).toMatchObject({ invalid: expect.any(String) });
    expect(parseHeartbeat(beat('nope'))).toMatchObject({ invalid: expect.stringMatching(/lanes/) });
    const many = Array.from({ length: MAX_LANE_REPORTS + 1 }, (_, i) => ({ deviceId: `d${i}`, state: 'retrying', seq: 1, attempt: 1, reason: 'x' }));
    expect(parseHeartbeat(beat(many))).toMatchObject({ invalid: expect.stringMatching(/at most/) });
    const long = parseHeartbeat(beat([{ deviceId: 'fw1', state: 'blocked', seq: 1, status: 400, response: 'r'.repeat(10_000), reason: 'x' }]));
    expect('lanes' in long && long.lanes![0]!.state === 'blocked' && long.lanes![0]!.response!.length).toBe(MAX_LANE_TEXT);
  });
});

describe('device.line: which lines changed between two heartbeats', () => {
  const blocked = (deviceId: string, seq: number) => ({ deviceId, state: 'blocked' as const, seq, status: 422, response: null, reason: 'r', since: 1 });
  const retrying = (deviceId: string, seq: number, attempt: number) => ({ deviceId, state: 'retrying' as const, seq, attempt, reason: 'r', since: 1 });
  it('a new report, another state or seq, and a line that flows again; not a further attempt of the same retry', () => {
    const before = [retrying('a', 3, 1), blocked('b', 7), retrying('c', 1, 1)];
    const after = [retrying('a', 3, 2), blocked('c', 1), blocked('d', 9)];
    expect(changedLines(before, after)).toEqual([['c', blocked('c', 1)], ['d', blocked('d', 9)], ['b', null]]);
    expect(changedLines(after, after)).toEqual([]);
  });
});
