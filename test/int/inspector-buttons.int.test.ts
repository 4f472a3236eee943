// The operator presses every button of the inspector's page, in headless Chromium, against a real
// runtime, real agent processes and simulated devices: Skip, Pause, Resume, Retry, Resend, Drop and
// Handover. Each press is seen to change what the page shows, and is checked against the device's
// own applied log, not only a status field.
import { describe, expect, it } from 'vitest';
import { staleWrites } from '../../src/devices/checker.ts';
import type { DeviceSimulator } from '../../src/devices/simulator.ts';
import { appliedSeqs, awaitAndCheck, blockedLine, dispatchLoad, startCluster } from '../support/cluster.ts';
import { cleanUpAfterEach, openInspector } from '../support/inspector-page.ts';

const owned = cleanUpAfterEach();

/** A runtime with its inspector on, and agent a1 started with `flags`; resolves once a1 is active. */
async function started(devices: number, flags: string[], inspector: { token?: string } = {}) {
  const c = owned(await startCluster({ devices }));
  const runtime = c.runtime({ inspector: { port: 0, ...inspector } });
  await runtime.start();
  c.startAgent('a1', flags);
  await runtime.ready();
  const url = (await runtime.status()).inspectorUrl!;
  return { c, runtime, url: inspector.token ? `${url}?token=${inspector.token}` : url };
}

describe('the inspector\'s buttons, pressed in headless Chromium', () => {
  it('Skip frees a blocked device, Pause keeps a device\'s messages and Resume sends them; the page and the devices\' logs follow', async () => {
    const { c, runtime, url } = await started(2, ['--on-permanent', 'block']);
    const [fw1, fw2] = c.sims as [DeviceSimulator, DeviceSimulator];
    const ui = await openInspector(url);

    // fw1 refuses a rule whose policy it does not have: blocked at that seq, shown with Skip
    const blocked = blockedLine(runtime, 'fw1');
    const refused = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/none/rules/r1', body: {} });
    const next = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: {} });
    await blocked;
    await ui.row('fw1').locator('td.st-blocked').waitFor();
    expect(await ui.press(ui.row('fw1').locator('button[data-act="skip"]'))).toMatch(/^done: /);
    await ui.row('fw1').locator('td.st-blocked').waitFor({ state: 'detached' });
    await runtime.applied(next, { timeoutMs: 15_000 });
    expect(appliedSeqs(fw1)).toEqual([next.seq]);
    expect((await runtime.deadLetters({ deviceId: 'fw1' }))[0]).toMatchObject({ seq: refused.seq, resolution: { kind: 'skipped' } });

    // fw2 paused from the page: its message waits; resumed from the page: applied
    expect(await ui.press(ui.row('fw2').locator('button[data-act="pause"]'))).toMatch(/^done: /);
    await ui.row('fw2').locator('td.st-paused').waitFor();
    const kept = await runtime.dispatch({ deviceId: 'fw2', method: 'PUT', path: '/policies/p2', body: {} });
    const other = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p3', body: {} });
    await runtime.applied(other, { timeoutMs: 15_000 });
    expect(appliedSeqs(fw2)).toEqual([]);
    expect(await ui.press(ui.row('fw2').locator('button[data-act="resume"]'))).toMatch(/^done: /);
    await runtime.applied(kept, { timeoutMs: 15_000 });
    expect(appliedSeqs(fw2)).toEqual([kept.seq]);
    await ui.row('fw2').locator('td.st-paused').waitFor({ state: 'detached' });
    // the audit list shows who did what
    for (const action of ['unblock-skip', 'pause', 'resume']) await ui.auditRows(action).first().waitFor();
  });

  it('Retry, once the device is fixed, applies the refused seq in its place and the line flows again', async () => {
    const { c, runtime, url } = await started(1, ['--on-permanent', 'block']);
    const fw1 = c.sims[0]!;
    const ui = await openInspector(url);
    const first = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: {} });
    await runtime.applied(first, { timeoutMs: 15_000 });

    // the device refuses the next write for good (422), then accepts writes again: a device its operator fixed
    fw1.setFaults({ refuse: { status: 422, count: 1 } });
    const blocked = blockedLine(runtime, 'fw1');
    const refused = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p2', body: { name: 'refused once' } });
    const held = [];
    for (const p of ['p3', 'p4']) held.push(await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: `/policies/${p}`, body: {} }));
    expect((await blocked).line).toMatchObject({ state: 'blocked', seq: refused.seq });
    // the device's answer shows once the agent's heartbeat reports the lane (until then: "no status")
    await ui.row('fw1').locator('td.st-blocked').waitFor();
    await ui.row('fw1').locator('td:nth-child(5)', { hasText: `seq ${refused.seq} refused (status 422` }).waitFor();
    expect(appliedSeqs(fw1)).toEqual([first.seq]);

    expect(await ui.press(ui.row('fw1').locator('button[data-act="retry"]'))).toMatch(/^done: /);
    // the page: no longer blocked, the watermark at the last seq
    await ui.row('fw1').locator('td.st-blocked').waitFor({ state: 'detached' });
    await ui.row('fw1').locator('td:nth-child(3)', { hasText: new RegExp(` / ${held.at(-1)!.seq}$`) }).waitFor();
    // the device's log: the refused seq applied in its place, the rest after it, each once
    await runtime.applied(held.at(-1)!, { timeoutMs: 15_000 });
    expect(appliedSeqs(fw1)).toEqual([first.seq, refused.seq, ...held.map((h) => h.seq)]);
    expect(fw1.applied.find((e) => e.seq === refused.seq)).toMatchObject({ method: 'PUT', path: '/policies/p2' });
    // its dead letter settled as retried, on the page too
    const [dl] = await runtime.deadLetters({ deviceId: 'fw1' });
    expect(dl).toMatchObject({ seq: refused.seq, resolution: { kind: 'retried', by: 'inspector' } });
    await ui.deadLetterRow(dl!.id).locator('td:nth-child(4)', { hasText: /^retried by inspector$/ }).waitFor();
    await ui.auditRows('unblock-retry').first().waitFor();
  });

  it('Resend puts a dead letter\'s message at the end of the line with a new seq; Drop, with a reason, settles one never applied (with a token)', async () => {
    const { c, runtime, url } = await started(1, ['--on-permanent', 'skip'], { token: 's3cret' });
    const fw1 = c.sims[0]!;
    const ui = await openInspector(url);

    // two rules whose policies the device does not have: refused, dead-lettered, left open; the line goes on
    const deadSeqs = new Set<number>();
    const bothDead = new Promise<void>((resolve) => runtime.on('message.dead-lettered', (e) => deadSeqs.add(e.seq) && deadSeqs.size === 2 && resolve()));
    const toResend = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p1/rules/r1', body: { action: 'allow' } });
    const toDrop = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/gone/rules/r2', body: {} });
    const fix = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: {} });
    await bothDead;
    await runtime.applied(fix, { timeoutMs: 15_000 });
    expect(appliedSeqs(fw1)).toEqual([fix.seq]);
    const open = await runtime.deadLetters({ deviceId: 'fw1', open: true });
    const idOf = (seq: number) => open.find((x) => x.seq === seq)!.id;
    expect(open.map((x) => x.seq).sort()).toEqual([toResend.seq, toDrop.seq].sort());
    const resendRow = ui.deadLetterRow(idOf(toResend.seq));
    const dropRow = ui.deadLetterRow(idOf(toDrop.seq));
    await resendRow.locator('td:nth-child(4)', { hasText: /^open$/ }).waitFor();

    // Resend: a new seq at the end of fw1's line, applied there
    expect(await ui.press(resendRow.locator('button[data-act="resend"]'))).toMatch(/^done: .*resent as seq \d+/);
    const now = await resendRow.locator('td:nth-child(4)', { hasText: /^resent as seq \d+ by token:token$/ }).innerText();
    const seq = Number(/seq (\d+)/.exec(now)![1]);
    expect(seq).toBeGreaterThan(fix.seq);
    await runtime.applied({ deviceId: 'fw1', seq }, { timeoutMs: 15_000 });
    expect(appliedSeqs(fw1)).toEqual([fix.seq, seq]);
    expect(fw1.applied.at(-1)).toMatchObject({ seq, method: 'PUT', path: '/policies/p1/rules/r1' });
    const resources = (await (await fetch(`${fw1.url}/_sim/resources`)).json()) as Record<string, unknown>;
    expect(resources['/policies/p1/rules/r1']).toEqual({ action: 'allow' });

    // Drop, with the reason the page asks for: settled, out of the open list, never applied
    ui.answerNextPrompt('policy "gone" was decommissioned');
    expect(await ui.press(dropRow.locator('button[data-act="drop"]'))).toMatch(/^done: /);
    await dropRow.locator('td:nth-child(4)', { hasText: /^dropped by token:token$/ }).waitFor();
    await dropRow.locator('button[data-act="drop"]').waitFor({ state: 'detached' });
    expect(await runtime.deadLetters({ deviceId: 'fw1', open: true })).toEqual([]);
    expect((await runtime.deadLetter(idOf(toDrop.seq)))!.resolution).toMatchObject({ kind: 'dropped', by: 'token:token', detail: expect.stringContaining('decommissioned') });
    const last = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p9', body: {} });
    await runtime.applied(last, { timeoutMs: 15_000 });
    expect(appliedSeqs(fw1)).toEqual([fix.seq, seq, last.seq]);
    expect(fw1.applied.some((e) => e.path.includes('/gone/'))).toBe(false);
    for (const action of ['dead-letter-resend', 'dead-letter-drop']) await ui.auditRows(action).first().waitFor();
  });

  it('Handover moves the stream to the other agent while messages are dispatched: the page shows it active; the devices\' logs have no duplicate, no gap, and the new epoch after', async () => {
    const { c, runtime, url } = await started(2, []);
    c.startAgent('a2');
    await new Promise<void>((resolve) => runtime.on('agent.registered', (e) => e.agentId === 'a2' && resolve()));
    const ui = await openInspector(url);
    await ui.page.waitForFunction(() => document.getElementById('f-agent')?.textContent === 'a1' && document.getElementById('f-epoch')?.textContent === '1');

    // the button is pressed once a quarter of the messages are dispatched, the rest still coming
    let reached!: () => void;
    const quarter = new Promise<void>((resolve) => (reached = resolve));
    const load = dispatchLoad(runtime, c.devices, 400, { concurrency: 4, onProgress: (n) => n === 100 && reached() });
    await Promise.race([quarter, load]);
    await ui.page.locator('#handover-to').fill('a2');
    expect(await ui.press(ui.page.locator('#handover'))).toMatch(/^done: /);
    await ui.page.waitForFunction(() => document.getElementById('f-agent')?.textContent === 'a2' && document.getElementById('f-epoch')?.textContent === '2');
    await ui.page.locator('#switches tbody tr', { hasText: 'a1 → a2' }).waitFor();

    const seqs = await load;
    const after = await Promise.all(c.devices.map((d) => runtime.dispatch({ deviceId: d.id, method: 'PUT', path: '/policies/after-handover', body: {} })));
    for (const a of after) seqs.get(a.deviceId)!.push(a.seq);
    await awaitAndCheck(c, seqs);
    c.sims.forEach((sim, i) => {
      // every seq dispatched, once, in order: no duplicate, no gap
      expect(appliedSeqs(sim)).toEqual(seqs.get(c.devices[i]!.id));
      // none written under an epoch lower than one before it; from the first write under epoch 2, all under it
      const applied = sim.applied.filter((e) => e.seq !== null);
      expect(staleWrites(applied)).toBe(0);
      const firstNew = applied.findIndex((e) => e.epoch === 2);
      expect(firstNew).toBeGreaterThanOrEqual(0);
      expect(applied.slice(firstNew).every((e) => e.epoch === 2)).toBe(true);
      expect(applied.at(-1)).toMatchObject({ seq: after[i]!.seq, epoch: 2, path: '/policies/after-handover' });
    });
    expect((await runtime.audit()).find((a) => a.action === 'handover')).toMatchObject({ target: 'a2', by: 'inspector', outcome: 'done' });
    await ui.auditRows('handover').first().waitFor();
  });
});
