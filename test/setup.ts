// The set-up step `npm test` runs before any test: checks each service, plugin and tool the suite
// needs, makes up what it can (starts a local service that is down, enables RabbitMQ's plugins,
// installs Debian's chromium as root), says in one line per item what it found and did, and stops
// at the first thing it cannot fix with a message naming it and the command that fixes it.
import { items, missing, type Item } from './support/preflight.ts';

const say = (line: string) => console.log(`[setup] ${line}`);

async function settle(item: Item): Promise<boolean> {
  const until = Date.now() + item.settleMs;
  for (;;) {
    if (await item.check()) return true;
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function setUp(item: Item): Promise<string | null> {
  if (await item.check()) {
    say(`${item.name}: there; nothing done`);
    return null;
  }
  const fix = item.fix();
  if (typeof fix === 'string') return missing(item, fix);
  say(`${item.name}: not there; fixing (${item.command})`);
  try {
    fix.run();
  } catch (e) {
    return missing(item, `\`${item.command}\` failed: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!(await settle(item))) return missing(item, `still not there ${item.settleMs / 1000} s after \`${item.command}\``);
  say(`${item.name}: ${fix.says}; there now`);
  return null;
}

for (const item of items) {
  const problem = await setUp(item);
  if (problem) {
    console.error(`[setup] cannot run the tests: ${problem}`);
    process.exit(1);
  }
}
say('ready');
