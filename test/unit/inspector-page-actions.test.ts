// The inspector page's operator buttons, their script run against stubs of the page: which buttons a
// device row and a dead letter row get, the request each button makes (skip and handover ask to
// confirm, drop asks for a reason and sends nothing without one), and that the whole page's script parses.
import { describe, expect, it } from 'vitest';
import { SCRIPT_ACTIONS } from '../../src/inspector/page-actions.ts';
import { inspectorPage } from '../../src/inspector/page.ts';

interface Buttons {
  deviceButtons(d: object): string;
  deadLetterButtons(x: object): string;
  request(b: { dataset: Record<string, string> }): [string, object] | null;
}

/** The script with the page's globals stubbed: `answers` are what confirm() and prompt() return. */
function load(answers: { confirm?: boolean; prompt?: string | null; handoverTo?: string } = {}): Buttons {
  const esc = (s: unknown) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const $ = () => ({ value: answers.handoverTo ?? '' });
  const document = { addEventListener() {} };
  const run = new Function('token', 'q', 'esc', '$', 'document', 'refreshDevices', 'confirm', 'prompt', `${SCRIPT_ACTIONS}\nreturn { deviceButtons, deadLetterButtons, request };`);
  return run(null, '', esc, $, document, () => {}, () => answers.confirm ?? true, () => answers.prompt ?? null) as Buttons;
}

const acts = (html: string) => [...html.matchAll(/data-act="(\w+)"/g)].map((m) => m[1]);

describe('the inspector page: operator buttons', () => {
  it('a device row: Pause, or Resume when paused; Retry and Skip when blocked', () => {
    const b = load();
    expect(acts(b.deviceButtons({ deviceId: 'fw1', state: 'flowing' }))).toEqual(['pause']);
    expect(acts(b.deviceButtons({ deviceId: 'fw1', state: 'blocked' }))).toEqual(['pause', 'retry', 'skip']);
    expect(acts(b.deviceButtons({ deviceId: 'fw1', state: 'paused' }))).toEqual(['resume']);
    expect(b.deviceButtons({ deviceId: '"><img>', state: 'idle' })).toContain('data-device="&#34;&#62;&#60;img&#62;"');
  });

  it('a dead letter row: Resend and Drop while open; nothing once resent or retried', () => {
    const b = load();
    expect(acts(b.deadLetterButtons({ id: 3, resolution: null }))).toEqual(['resend', 'drop']);
    expect(acts(b.deadLetterButtons({ id: 3, resolution: { kind: 'dropped' } }))).toEqual(['resend']);
    expect(acts(b.deadLetterButtons({ id: 3, resolution: { kind: 'resent' } }))).toEqual([]);
    expect(acts(b.deadLetterButtons({ id: 3, resolution: { kind: 'retried' } }))).toEqual([]);
  });

  it('each button\'s request; skip and handover need a confirmation, drop a reason', () => {
    const b = load({ prompt: 'not needed', handoverTo: 'a2' });
    const btn = (dataset: Record<string, string>) => b.request({ dataset });
    expect(btn({ act: 'pause', device: 'fw 1' })).toEqual(['/api/devices/fw%201/pause', {}]);
    expect(btn({ act: 'retry', device: 'fw1' })).toEqual(['/api/devices/fw1/unblock', { action: 'retry' }]);
    expect(btn({ act: 'skip', device: 'fw1' })).toEqual(['/api/devices/fw1/unblock', { action: 'skip' }]);
    expect(btn({ act: 'resend', id: '3' })).toEqual(['/api/dead-letters/3/resend', {}]);
    expect(btn({ act: 'drop', id: '3' })).toEqual(['/api/dead-letters/3/drop', { reason: 'not needed' }]);
    expect(btn({ act: 'handover' })).toEqual(['/api/handover', { to: 'a2' }]);
    const no = load({ confirm: false, prompt: '  ' });
    expect(no.request({ dataset: { act: 'skip', device: 'fw1' } })).toBeNull();
    expect(no.request({ dataset: { act: 'handover' } })).toBeNull();
    expect(no.request({ dataset: { act: 'drop', id: '3' } })).toBeNull();
  });

  it('the page holds the dead letters table, the audit list and the Handover button, and its script parses', () => {
    const page = inspectorPage();
    for (const id of ['id="dead-letters"', 'id="audit"', 'id="handover"']) expect(page).toContain(id);
    const script = /<script>([\s\S]*)<\/script>/.exec(page)![1]!;
    expect(() => new Function(script)).not.toThrow();
  });
});
