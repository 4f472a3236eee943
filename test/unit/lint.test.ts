// The lint step's checks (scripts/lint/) over small trees written to a temp dir: each rule fails when
// broken on purpose and passes when kept.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkCycles, checkImports } from '../../scripts/lint/imports.ts';
import { lint } from '../../scripts/lint/main.ts';
import { checkSizes } from '../../scripts/lint/sizes.ts';
import { formatViolation, readTree } from '../../scripts/lint/tree.ts';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A checkout holding these files (path → text); every file a fixture imports is created empty unless given. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'baton-lint-'));
  roots.push(root);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

const importViolations = (files: Record<string, string>) => {
  const root = tree(files);
  return checkImports(root, readTree(root));
};
const cycles = (files: Record<string, string>) => {
  const root = tree(files);
  return checkCycles(root, readTree(root));
};
const sizes = (files: Record<string, string>) => checkSizes(readTree(tree(files)));

/** Kernel files the fixtures import. */
const kernel = { 'src/errors.ts': 'export {};\n', 'src/ports.ts': 'export {};\n', 'machines/coordinator.machine.ts': "import { setup } from 'xstate';\n" };

// [what, importing file, its import, allowed?]
const layerCases: Array<[string, string, string, boolean]> = [
  ['machines/ imports xstate and machines/', 'machines/a.machine.ts', "import { setup } from 'xstate';\nimport './coordinator.machine.ts';", true],
  ['machines/ imports a package other than xstate', 'machines/a.machine.ts', "import pino from 'pino';", false],
  ['machines/ imports a node builtin', 'machines/a.machine.ts', "import { setTimeout } from 'node:timers';", false],
  ['machines/ imports the kernel', 'machines/a.machine.ts', "import type { X } from '../src/ports.ts';", false],
  ['the kernel imports machines/ and the kernel', 'src/config.ts', "import '../machines/coordinator.machine.ts';\nimport './errors.ts';", true],
  ['the kernel imports a folder of src/', 'src/config.ts', "import type { R } from './runtime/runtime.ts';", false],
  ['src/index.ts imports the runtime', 'src/index.ts', "export { createRuntime } from './runtime/runtime.ts';", true],
  ['src/index.ts imports tools/', 'src/index.ts', "export * from './tools/cli.ts';", false],
  ['devices/ imports the kernel', 'src/devices/simulator.ts', "import '../errors.ts';\nimport './model.ts';", true],
  ['devices/ imports machines/', 'src/devices/simulator.ts', "import '../../machines/coordinator.machine.ts';", false],
  ['adapters/ import the kernel', 'src/adapters/amqp/broker.ts', "import '../../ports.ts';\nimport './permissions.ts';\nimport '../http-device-client.ts';", true],
  ['adapters/ import devices/', 'src/adapters/http-device-client.ts', "import '../devices/model.ts';", false],
  ['adapters/memory/ imports devices/', 'src/adapters/memory/device.ts', "import type { DeviceModel } from '../../devices/model.ts';", true],
  ['adapters/memory/ imports another adapter', 'src/adapters/memory/device.ts', "import { classify } from '../http-device-client.ts';", false],
  ['inspector/ imports the kernel and machines/', 'src/inspector/server.ts', "import '../errors.ts';\nimport '../../machines/coordinator.machine.ts';", true],
  ['inspector/ imports runtime/', 'src/inspector/server.ts', "import type { Runtime } from '../runtime/runtime.ts';", false],
  ['runtime/ imports adapters/, inspector/, machines/', 'src/runtime/runtime.ts', "import '../adapters/amqp/broker.ts';\nimport '../inspector/server.ts';\nimport '../../machines/coordinator.machine.ts';", true],
  ['runtime/ imports agent/', 'src/runtime/lease-granter.ts', "import '../agent/lease.ts';", false],
  ['runtime/ imports tools/', 'src/runtime/runtime.ts', "import '../tools/status.ts';", false],
  ['runtime/ imports devices/', 'src/runtime/runtime.ts', "import '../devices/simulator.ts';", false],
  ['agent/ imports adapters/', 'src/agent/worker.ts', "import '../adapters/amqp/broker.ts';\nimport './lease.ts';", true],
  ['agent/ imports runtime/', 'src/agent/worker.ts', "import type { X } from '../runtime/metrics.ts';", false],
  ['agent/ imports inspector/', 'src/agent/worker.ts', "import '../inspector/server.ts';", false],
  ['agent/ imports devices/', 'src/agent/worker.ts', "import '../devices/model.ts';", false],
  ['tools/ import anything in src/', 'src/tools/cli.ts', "import '../runtime/runtime.ts';\nimport '../agent/worker.ts';\nimport '../index.ts';", true],
  ['tools/ import scripts/ (dynamically)', 'src/tools/cli.ts', "export const run = () => import('../../scripts/bench/harness.ts');", false],
  ['the kernel imports scripts/', 'src/config.ts', "export * from '../scripts/bench/harness.ts';", false],
  ['scripts/ import src/', 'scripts/baton.mjs', "await import('../src/tools/cli.ts');", true],
  ['src/ imports test/', 'src/tools/demo.ts', "import '../../test/support/cluster.ts';", false],
  ['a file in a folder of src/ that is no layer', 'src/receipts/batch.ts', "import '../errors.ts';", false],
  ['a relative import that names no file', 'src/runtime/runtime.ts', "import './nowhere.ts';", false],
];

describe('lint: import rules', () => {
  it.each(layerCases)('%s', (_, file, source, allowed) => {
    const targets = [...source.matchAll(/'(\.[^']+)'/g)].map((m) => path.join(path.dirname(file), m[1]!)).filter((t) => !t.includes('nowhere'));
    const files: Record<string, string> = { ...kernel, ...Object.fromEntries(targets.map((t) => [t, 'export {};\n'])), [file]: `${source}\n` };
    const found = importViolations(files);
    if (allowed) expect(found).toEqual([]);
    else expect(found.map((v) => v.file)).toEqual([file]);
  });

  it('reads every form of import: type-only, export from, dynamic, import types, require', () => {
    const forms = [
      "import type { A } from '../agent/a.ts';",
      "export { B } from '../agent/b.ts';",
      "export * from '../agent/c.ts';",
      "const d = await import('../agent/d.ts');",
      "type E = typeof import('../agent/e.ts');",
      "const f = require('../agent/f.ts');",
      "import g = require('../agent/g.ts');",
    ];
    const agent = Object.fromEntries('abcdefg'.split('').map((x) => [`src/agent/${x}.ts`, 'export {};\n']));
    const found = importViolations({ ...agent, 'src/runtime/r.ts': forms.join('\n') + '\n' });
    expect(found.map((v) => v.line)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('resolves a .js specifier to its .ts file and a folder to its index.ts', () => {
    const found = importViolations({ 'src/agent/lease.ts': '', 'src/agent/parts/index.ts': '', 'src/runtime/r.ts': "import '../agent/lease.js';\nimport '../agent/parts';\n" });
    expect(found.map((v) => v.what)).toEqual([
      "runtime/ imports agent/: '../agent/lease.js' (src/agent/lease.ts)",
      "runtime/ imports agent/: '../agent/parts' (src/agent/parts/index.ts)",
    ]);
  });

  it('says which file and line, which import, the rule it breaks and where the thing belongs', () => {
    const [v] = importViolations({ 'src/agent/lease.ts': '', 'src/runtime/lease-granter.ts': "// grants leases\nimport { x } from '../agent/lease.ts';\n" });
    expect(formatViolation(v!)).toBe(
      "src/runtime/lease-granter.ts:2  error: runtime/ imports agent/: '../agent/lease.ts' (src/agent/lease.ts)\n" +
        '    rule: runtime/ imports the kernel, machines/, adapters/ and inspector/; never agent/, tools/ or devices/\n' +
        '    fix:  the runtime and the agent are separate processes: move what both use into the kernel (src/*.ts: api.ts, side-channel.ts, ports.ts, ...)',
    );
  });

  it('says that the arrow between src/ and scripts/ points one way', () => {
    const [v] = importViolations({ 'scripts/bench/harness.ts': '', 'src/config.ts': "import type { B } from '../scripts/bench/harness.ts';\n" });
    expect(v).toMatchObject({ file: 'src/config.ts', line: 1, rule: 'nothing in src/ or machines/ imports scripts/ (scripts/ import src/: the arrow points one way)' });
    expect(v!.fix).toMatch(/^scripts\/ run src\/, never the reverse/);
  });

  it('tells machines/ importing a package to provide the implementation from the runtime', () => {
    const [v] = importViolations({ 'machines/a.machine.ts': "import pino from 'pino/file';\n" });
    expect(v).toMatchObject({ file: 'machines/a.machine.ts', line: 1, what: "machines/ imports the package 'pino' ('pino/file')" });
    expect(v!.fix).toMatch(/\.provide\(\)/);
  });
});

describe('lint: import cycles', () => {
  it('finds a cycle of type-only imports, and shows it', () => {
    const found = cycles({
      'src/a.ts': "import type { B } from './b.ts';\nexport type A = B;\n",
      'src/b.ts': "import type { C } from './c.ts';\nexport type B = C;\n",
      'src/c.ts': "\nimport type { A } from './a.ts';\nexport type C = A;\n",
    });
    expect(found).toHaveLength(1);
    expect(found[0]!.what).toBe("import cycle: src/a.ts:1 imports './b.ts' → src/b.ts:1 imports './c.ts' → src/c.ts:2 imports './a.ts' → back to src/a.ts");
  });

  it('finds a cycle across folders and a file that imports itself', () => {
    const found = cycles({
      'src/tools/sim/simulation.ts': "import { simulateWide } from './wide.ts';\n",
      'src/tools/sim/wide.ts': "import type { SimOptions } from './simulation.ts';\n",
      'scripts/self.ts': "export * from './self.ts';\n",
    });
    expect(found.map((v) => v.file)).toEqual(['scripts/self.ts', 'src/tools/sim/simulation.ts']);
  });

  it('reports a ring of many files once, naming them all', () => {
    const found = cycles({
      'src/a.ts': "import './b.ts';\nimport './c.ts';\n",
      'src/b.ts': "import './a.ts';\n",
      'src/c.ts': "import './b.ts';\n",
    });
    expect(found).toHaveLength(1);
    expect(found[0]!.what).toContain('3 files are tied in this ring: src/a.ts, src/b.ts, src/c.ts');
  });

  it('passes a tree whose imports all run one way (a diamond is no cycle)', () => {
    expect(cycles({ 'src/a.ts': "import './b.ts';\nimport './c.ts';\n", 'src/b.ts': "import './d.ts';\n", 'src/c.ts': "import './d.ts';\n", 'src/d.ts': '' })).toEqual([]);
  });
});

const fn = (name: string, lines: number) => `export function ${name}() {\n${'  void 0;\n'.repeat(lines - 2)}}\n`;
const filler = (lines: number) => 'export const x = 1;\n'.repeat(lines);

describe('lint: sizes', () => {
  it('fails a function of 81 lines in src/ or machines/, passes one of 80, and names it', () => {
    const found = sizes({ 'src/a.ts': fn('long', 81) + fn('fine', 80), 'machines/m.ts': `\n${fn('longer', 90)}` });
    expect(found.map((v) => `${v.file}:${v.line} ${v.what}`)).toEqual([
      'machines/m.ts:2 function longer is 90 lines long (at most 80)',
      'src/a.ts:1 function long is 81 lines long (at most 80)',
    ]);
  });

  it('names arrows, methods and anonymous functions by where they sit', () => {
    const body = `{\n${'  void 0;\n'.repeat(80)}}`;
    const found = sizes({ 'src/a.ts': `const arrow = () => ${body};\nconst o = { method() ${body} };\nfunction outer() {\n  return () => ${body};\n}\n` });
    expect(found.map((v) => v.what.split(' is ')[0])).toEqual(['function arrow', 'function method', 'function outer', 'function (anonymous, in outer)']);
  });

  it('leaves long functions in scripts/ alone', () => {
    expect(sizes({ 'scripts/bench/long.ts': fn('long', 200) })).toEqual([]);
  });

  it('fails a file in src/ over 300 lines, passes one of 300', () => {
    expect(sizes({ 'src/a.ts': filler(300), 'machines/m.ts': filler(400) })).toEqual([]);
    expect(sizes({ 'src/runtime/a.ts': filler(301) }).map((v) => v.what)).toEqual(['file is 301 lines long (at most 300 without a stated reason)']);
  });

  it('passes a long file whose header comment says why, in a block or in line comments', () => {
    const block = '/**\n * The store.\n *\n * Longer than 300 lines: one adapter, one SQL statement per method.\n */\n';
    const lines = '#!/usr/bin/env node\n// The store.\n// Longer than 300 lines: one adapter.\n';
    expect(sizes({ 'src/a.ts': block + filler(400), 'src/b.ts': lines + filler(400) })).toEqual([]);
  });

  it('fails a long file whose reason is empty or not in its header comment', () => {
    const empty = '/**\n * Longer than 300 lines:\n */\n';
    const later = '/** The store. */\n// Longer than 300 lines: it grew.\n';
    expect(sizes({ 'src/a.ts': empty + filler(400), 'src/b.ts': later + filler(400) }).map((v) => v.file)).toEqual(['src/a.ts', 'src/b.ts']);
  });
});

describe('lint: the whole step', () => {
  const root = () => tree({ 'src/agent/lease.ts': '', 'src/runtime/r.ts': `import '../agent/lease.ts';\n${fn('long', 100)}` });

  it('counts size violations as errors by default', () => {
    const r = lint(root());
    expect(r.errors.map((v) => v.check)).toEqual(['imports', 'sizes']);
    expect(r.warnings).toEqual([]);
  });

  it('BATON_LINT_SIZES=warn turns size violations into warnings, not import ones', () => {
    const r = lint(root(), 'warn');
    expect(r.errors.map((v) => v.check)).toEqual(['imports']);
    expect(r.warnings.map((v) => v.check)).toEqual(['sizes']);
  });
});
