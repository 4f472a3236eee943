// The inspector's page in headless Chromium (Debian's package, driven by playwright-core), as the
// browser tests open it: one browser per test file, a fresh context per page, the page's dialogs
// answered (a confirm accepted, a prompt with the answer the test queued), and locators for the rows
// the operator acts on. A press waits for the page's own answer to it, never for a time.
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, afterEach } from 'vitest';
import type { Cluster } from './cluster.ts';
import { chromium as browserInstalled, CHROMIUM_PATH, requireItem } from './preflight.ts';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let browser: Browser | null = null;
const contexts = new Set<BrowserContext>();

export interface InspectorPage {
  page: Page;
  /** every URL the page requested, from its first */
  requests: string[];
  /** the devices table's row of a device */
  row(deviceId: string): Locator;
  /** the dead letters table's row of a dead letter */
  deadLetterRow(id: number): Locator;
  /** the audit list's rows of an action (e.g. `unblock-retry`) */
  auditRows(action: string): Locator;
  /** what the page answers the next prompt with (a drop's reason) */
  answerNextPrompt(text: string): void;
  /** clicks an operator button and resolves with what the page shows of the answer (`done: …`, or the error's words) */
  press(button: Locator): Promise<string>;
}

const exactly = (text: string | number) => new RegExp(`^${String(text).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

/** Opens `url` in headless Chromium (launched once per file); fails at once, saying how to install it, when it is missing. */
export async function openInspector(url: string, o: { width?: number } = {}): Promise<InspectorPage> {
  await requireItem(browserInstalled);
  browser ??= await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport: { width: o.width ?? 1400, height: 1000 } });
  contexts.add(context);
  const page = await context.newPage();
  const requests: string[] = [];
  const prompts: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => void (d.type() === 'prompt' ? d.accept(prompts.shift() ?? '') : d.accept()));
  await page.goto(url);
  const result = page.locator('#act-result');
  return {
    page,
    requests,
    row: (deviceId) => page.locator('#devices tbody tr').filter({ has: page.locator('td:first-child', { hasText: exactly(deviceId) }) }),
    deadLetterRow: (id) => page.locator('#dead-letters tbody tr').filter({ has: page.locator('td:first-child', { hasText: exactly(id) }) }),
    auditRows: (action) => page.locator('#audit tbody tr').filter({ has: page.locator('td:nth-child(2)', { hasText: exactly(action) }) }),
    answerNextPrompt: (text) => void prompts.push(text),
    async press(button) {
      await result.evaluate((el) => {
        el.textContent = '';
      });
      await button.click();
      await page.waitForFunction(() => (document.getElementById('act-result')?.textContent ?? '') !== '');
      return result.innerText();
    },
  };
}

/** Closes the pages opened so far; `browser: true` closes Chromium too. */
async function closeInspectors(o: { browser?: boolean } = {}): Promise<void> {
  for (const c of contexts) await c.close().catch(() => {});
  contexts.clear();
  if (o.browser) {
    await browser?.close();
    browser = null;
  }
}

/**
 * A browser test file's clean-up, registered once at its top: after each test its pages and the
 * cluster it was given go, after the file Chromium. Returns what a test hands its cluster to.
 */
export function cleanUpAfterEach(): <C extends Cluster>(cluster: C) => C {
  let current: Cluster | null = null;
  afterEach(async () => {
    await closeInspectors();
    await current?.dispose();
    current = null;
  });
  afterAll(() => closeInspectors({ browser: true }));
  return (cluster) => ((current = cluster), cluster);
}
