// Adversarial review, second pass: fault sequences left after the fixes of issue 12 that lose,
// strand or duplicate an accepted message. Each is scripted by hand over the real runtime, machines
// and agents (in-memory broker and store, simulated clock, every process behind a gate) and asserts
// the invariant of DESIGN.md §8 that breaks. They fail on the code as reviewed; the lead fixes.
import { describe, expect, it } from 'vitest';
import { harness, release } from '../support/adversarial-harness.ts';

describe('adversarial2', () => {
  it('Q1: a park statement delayed past databaseTimeout is read back before it reaches the database: told "not stored, dispatch it again", then it commits and is replayed; the resend is applied too (invariants 2 and 4); fixed: the read-back marks it refused, the late statement inserts nothing', async () => {
    const h = harness({ seed: 21 });
    const r1 = await h.runtime('r1', { databaseTimeout: 1000 });
    await h.run(() => r1.leading, 5000);
    await h.agent('a1');
    await h.run(() => false, 1500);
    expect(await h.store.getAssignment()).toMatchObject({ agentId: 'a1', phase: 'normal' });
    // the only agent dies: r1 switches, finds no candidate, parks from now on
    h.kill('a1');
    await h.run(() => h.trace.some((l) => l.includes('r1: switch phase awaiting-candidate')), 5000);
    // the park's statement is held on its connection (a retransmit, a lock wait): it reaches the database later
    r1.db.holds.add('park');
    const m1 = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: {} });
    await h.run(() => m1.state !== 'pending', 5000);
    h.note(`park answered: ${m1.state} ${m1.error ?? ''}`);
    // the statement arrives: r1 still leads in the same term, so it commits
    r1.db.holds.delete('park');
    expect(release(r1, 'park')).toBe(1);
    await h.run(() => false, 50);
    h.note(`parked rows now: ${await h.store.countParked()}`);
    // the host did what the error said: dispatch it again
    const again = m1.state === 'refused' && /not stored/.test(m1.error ?? '') ? h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: {} }) : null;
    await h.run(() => again === null || again.state !== 'pending', 5000);
    await h.agent('a2');
    await h.run(() => false, 10_000);
    const applied = h.applied('fw1').filter((a) => a.path === '/policies/p1').map((a) => a.seq);
    // invariant 2: applied = accepted, exactly (a call told "not stored" is not applied); invariant 4: one write per message
    const accepted = [m1, again].filter((x) => x?.state === 'accepted').map((x) => x!.seq);
    expect({ applied, appliedCopies: applied.length }, h.trace.join('\n')).toEqual({ applied: accepted, appliedCopies: 1 });
    for (const id of ['r1', 'a2']) h.kill(id);
  });

  it('Q1b: the same delayed park landing after the switch completed: the row stays parked while the dispatcher sends directly, never replayed (invariant 5)', async () => {
    const h = harness({ seed: 23 });
    const r1 = await h.runtime('r1', { databaseTimeout: 1000 });
    await h.run(() => r1.leading, 5000);
    await h.agent('a1');
    await h.run(() => false, 1500);
    h.kill('a1');
    await h.run(() => h.trace.some((l) => l.includes('r1: switch phase awaiting-candidate')), 5000);
    r1.db.holds.add('park');
    const m1 = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: {} });
    await h.run(() => m1.state !== 'pending', 5000);
    expect(m1.state).toBe('refused');
    // an agent arrives: the switch completes with nothing to replay, back to normal
    r1.db.holds.delete('park');
    await h.agent('a2');
    await h.run(() => h.trace.some((l) => l.includes('r1: switch completed: a2 active')), 10_000);
    const m2 = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/p2', body: {} });
    await h.run(() => m2.state !== 'pending', 2000);
    // now the delayed statement reaches the database: r1 still leads in the same term, so it commits
    expect(release(r1, 'park')).toBe(1);
    await h.run(() => false, 20_000);
    const st = await r1.runtime.status();
    // invariant 5: once faults heal, nothing parked (the row is never replayed: the dispatcher sends directly)
    expect({ coordinator: st.coordinator, parked: st.parked }, h.trace.join('\n')).toEqual({ coordinator: { normal: 'idle' }, parked: 0 });
    for (const id of ['r1', 'a2']) h.kill(id);
  });

  it('Q2: a completeSwitch delayed across a leadership lapse that the same runtime wins back (same term epoch) lands after loading read "replaying": the re-entered replaying fails for good, every message parks forever (invariant 5)', async () => {
    const h = harness({ seed: 22 });
    const r1 = await h.runtime('r1');
    await h.run(() => r1.leading, 5000);
    await h.agent('a1');
    await h.run(() => false, 300);
    await h.agent('a2');
    await h.run(() => false, 1500);
    expect(await h.store.getAssignment()).toMatchObject({ agentId: 'a1', phase: 'normal' });
    // the statement that completes the switch will be slow to reach the database
    r1.db.holds.add('completeSwitch');
    h.kill('a1');
    await h.run(() => r1.db.held.some((f) => f.prop === 'completeSwitch'), 10_000);
    h.note('completeSwitch sent, held on its connection');
    // the same network trouble holds the renewals: r1's lease runs out (no other runtime takes over)
    r1.db.holds.add('acquireLeadership');
    r1.db.holds.add('setPhase');
    await h.run(() => !r1.leading, 5000);
    // the renewals get through again: r1 wins back the row it still holds, same epoch (a continued term)
    r1.db.holds.delete('acquireLeadership');
    release(r1, 'acquireLeadership');
    await h.run(() => r1.leading, 5000);
    // loading read phase replaying; the re-entered replaying's setPhase is on its way; the old completeSwitch lands first
    await h.run(() => r1.db.held.some((f) => f.prop === 'setPhase'), 5000);
    r1.db.holds.delete('completeSwitch');
    r1.db.holds.delete('setPhase');
    release(r1, 'completeSwitch');
    await h.run(() => false, 20);
    release(r1, 'setPhase');
    await h.run(() => false, 2000);
    const m = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/after', body: {} });
    await h.run(() => false, 20_000);
    const st = await r1.runtime.status();
    h.note(`coordinator ${JSON.stringify(st.coordinator)}, dispatcher ${JSON.stringify(st.dispatcher)}, parked ${st.parked}`);
    // invariant 5: once faults heal, normal with nothing parked; the accepted message applied
    expect({ accepted: m.state, coordinator: st.coordinator, parked: st.parked, applied: h.applied('fw1').some((a) => a.path === '/policies/after') }, h.trace.join('\n')).toEqual({ accepted: 'accepted', coordinator: { normal: 'idle' }, parked: 0, applied: true });
    for (const id of ['r1', 'a2']) h.kill(id);
  });
  it('Q3: a beginSwitch delayed across a leadership lapse that the same runtime wins back lands after it adopted the (healthy again) agent: the database says lock = 1, switching, while the coordinator runs normal, and the stale step stops the grants to the agent: later messages wait in its queue forever (invariants 2 and 5)', async () => {
    const h = harness({ seed: 24 });
    const r1 = await h.runtime('r1');
    await h.run(() => r1.leading, 5000);
    const a1 = await h.agent('a1');
    await h.run(() => false, 300);
    await h.agent('a2');
    await h.run(() => false, 1500);
    expect(await h.store.getAssignment()).toMatchObject({ agentId: 'a1', phase: 'normal' });
    // a1 hangs: r1 declares it dead and sends the compare-and-set that begins the switch; it is slow to arrive
    r1.db.holds.add('beginSwitch');
    a1.gate.pause();
    await h.run(() => r1.db.held.some((f) => f.prop === 'beginSwitch'), 10_000);
    // the renewals are held too: r1's lease runs out; a1 resumes meanwhile
    r1.db.holds.add('acquireLeadership');
    await h.run(() => !r1.leading, 5000);
    a1.gate.resume();
    h.note('a1 resumed');
    await h.run(() => false, 500);
    r1.db.holds.delete('acquireLeadership');
    release(r1, 'acquireLeadership');
    await h.run(() => r1.leading && h.trace.filter((l) => l.includes('r1 leads')).length === 2, 5000);
    await h.run(() => false, 500);
    // the old compare-and-set arrives: same holder, same term epoch, so it is taken
    r1.db.holds.delete('beginSwitch');
    release(r1, 'beginSwitch');
    await h.run(() => false, 1000);
    const m = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/after', body: {} });
    await h.run(() => false, 5000);
    const m2 = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/later', body: {} });
    await h.run(() => false, 40_000);
    h.note(`/policies/later: ${m2.state}, applied ${h.applied('fw1').some((x) => x.path === '/policies/later')}`);
    const st = await r1.runtime.status();
    const a = await h.store.getAssignment();
    h.note(`coordinator ${JSON.stringify(st.coordinator)}, assignment ${JSON.stringify(a)}, a1 queue ${st.queueDepth} ready`);
    // invariants 2 and 5: both accepted messages applied; normal with lock = 0, the coordinator agreeing with the database
    expect({ accepted: [m.state, m2.state], applied: ['/policies/after', '/policies/later'].map((p) => h.applied('fw1').some((x) => x.path === p)), coordinator: st.coordinator, lock: a?.lock, phase: a?.phase }, h.trace.join('\n')).toEqual({ accepted: ['accepted', 'accepted'], applied: [true, true], coordinator: { normal: 'idle' }, lock: 0, phase: 'normal' });
    for (const id of ['r1', 'a1', 'a2']) h.kill(id);
  });
});
