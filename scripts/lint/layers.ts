/**
 * The layers of baton and what each may import (src/README.md): the one table the import check reads.
 * A new folder in src/ belongs to no layer until it is added here, with its rule.
 */

export type Layer =
  | 'machines'
  | 'kernel'
  | 'public'
  | 'runtime'
  | 'agent'
  | 'adapters'
  | 'adapters/memory'
  | 'devices'
  | 'inspector'
  | 'serve'
  | 'tools'
  | 'scripts'
  | 'test'
  /** a file of the checkout outside these (package.json, say) */
  | 'other'
  /** a folder of src/ this table does not know */
  | 'unknown';

interface LayerRule {
  /** how a message names the layer */
  name: string;
  /** the layers its files may import (its own is always allowed) */
  may: readonly Layer[];
  /** the rule, as a message states it */
  rule: string;
}

const SRC_BELOW_TOOLS: Layer[] = ['kernel', 'machines', 'runtime', 'agent', 'adapters', 'adapters/memory', 'devices', 'inspector', 'serve', 'other'];

export const LAYERS: Record<Layer, LayerRule> = {
  machines: { name: 'machines/', may: [], rule: 'machines/ holds the pure statecharts: they import only xstate and each other' },
  kernel: {
    name: 'the kernel (src/*.ts)',
    may: ['machines', 'other'],
    rule: 'the kernel (src/*.ts) is shared by every side: it imports machines/ and other kernel files, never a folder of src/',
  },
  public: { name: 'src/index.ts', may: SRC_BELOW_TOOLS, rule: 'src/index.ts, the public API, may expose anything in src/ but tools/' },
  runtime: {
    name: 'runtime/',
    may: ['kernel', 'machines', 'adapters', 'adapters/memory', 'inspector', 'other'],
    rule: 'runtime/ imports the kernel, machines/, adapters/ and inspector/; never agent/, tools/ or devices/',
  },
  agent: {
    name: 'agent/',
    may: ['kernel', 'machines', 'adapters', 'adapters/memory', 'other'],
    rule: 'agent/ imports the kernel, machines/ and adapters/; never runtime/, tools/, inspector/ or devices/',
  },
  adapters: { name: 'adapters/', may: ['kernel', 'other'], rule: 'adapters/ implement the ports of src/ports.ts and import only the kernel' },
  'adapters/memory': {
    name: 'adapters/memory/',
    may: ['kernel', 'devices', 'other'],
    rule: 'adapters/memory/ (the in-memory ports) imports only the kernel and devices/ (its devices are device models)',
  },
  devices: { name: 'devices/', may: ['kernel', 'other'], rule: 'devices/ (the device simulator, its model, the checker) imports only the kernel' },
  inspector: {
    name: 'inspector/',
    may: ['kernel', 'machines', 'other'],
    rule: 'inspector/ imports only the kernel and machines/; the runtime starts it and hands it what it shows',
  },
  serve: {
    name: 'serve/',
    may: ['kernel', 'machines', 'inspector', 'other'],
    rule: 'serve/ (baton serve: the HTTP API over a Runtime) imports only the kernel, machines/ and inspector/; it is handed the runtime and its stores',
  },
  tools: { name: 'tools/', may: [...SRC_BELOW_TOOLS, 'public'], rule: 'tools/ may import anything in src/ and machines/, never scripts/' },
  scripts: {
    name: 'scripts/',
    may: [...SRC_BELOW_TOOLS, 'public', 'tools', 'test'],
    rule: 'scripts/ may import anything; nothing in src/ or machines/ imports scripts/',
  },
  test: { name: 'test/', may: [], rule: 'test/ may import anything; nothing outside test/ but scripts/ imports it' },
  other: { name: 'the checkout', may: [], rule: '' },
  unknown: { name: 'an unknown folder of src/', may: [], rule: 'every folder of src/ is a layer of scripts/lint/layers.ts' },
};

/** The folders of src/ that are layers (adapters/memory/ is told apart from the other adapters). */
const SRC_FOLDERS = new Set<Layer>(['runtime', 'agent', 'adapters', 'devices', 'inspector', 'serve', 'tools']);

/** The layer of a file, from its path relative to the checkout (`src/runtime/runtime.ts`). */
export function layerOf(rel: string): Layer {
  if (rel.startsWith('machines/')) return 'machines';
  if (rel.startsWith('scripts/')) return 'scripts';
  if (rel.startsWith('test/')) return 'test';
  if (!rel.startsWith('src/')) return 'other';
  if (rel === 'src/index.ts') return 'public';
  if (!rel.slice(4).includes('/')) return 'kernel';
  if (rel.startsWith('src/adapters/memory/')) return 'adapters/memory';
  const folder = rel.split('/')[1] as Layer;
  return SRC_FOLDERS.has(folder) ? folder : 'unknown';
}

/** Whether a file of layer `from` may import a file of layer `to`. */
export function mayImport(from: Layer, to: Layer): boolean {
  if (from === 'unknown' || to === 'unknown') return false;
  return from === to || LAYERS[from].may.includes(to);
}

/** Packages a layer may import; null: any. Only machines/ is held to a list. */
export function mayImportPackage(from: Layer, specifier: string): boolean {
  if (from !== 'machines') return true;
  return specifier === 'xstate' || specifier.startsWith('xstate/');
}

/** The rule an import of `to` from `from` breaks. */
export function ruleBroken(from: Layer, to: Layer): string {
  if (to === 'scripts') return 'nothing in src/ or machines/ imports scripts/ (scripts/ import src/: the arrow points one way)';
  if (to === 'test') return LAYERS.test.rule;
  return LAYERS[from].rule;
}

/** Where the imported thing belongs instead, for a message read by whoever must mend it. */
export function whereItBelongs(from: Layer, to: Layer): string {
  const here = LAYERS[from].name;
  if (from === 'unknown') return 'put the file in a folder of src/README.md, or add the folder to scripts/lint/layers.ts with what it may import';
  if (to === 'unknown') return 'move the imported file into a folder of src/README.md, or add its folder to scripts/lint/layers.ts';
  if (to === 'scripts') return 'scripts/ run src/, never the reverse: move the code into src/ (src/tools/ for a command) and let the script import it from there';
  if (to === 'test') return 'test/ is only imported by tests: move what is needed into src/ (src/adapters/memory/ for a fake)';
  if (from === 'machines') {
    return 'move the shared type into machines/ (the kernel may import machines/), or name an action or actor in setup() and let the runtime .provide() the implementation';
  }
  if (to === 'tools') return `tools/ is the top layer and nothing in src/ imports it: move the code down into the kernel (src/*.ts) or into ${here}`;
  if ((from === 'runtime' && to === 'agent') || (from === 'agent' && to === 'runtime')) {
    return 'the runtime and the agent are separate processes: move what both use into the kernel (src/*.ts: api.ts, side-channel.ts, ports.ts, ...)';
  }
  if (to === 'devices') return 'devices/ is the bundled simulator: reach a device through the DeviceClient port (src/ports.ts) and let the composition root pass the adapter in';
  if (from === 'kernel') return `the kernel must not depend on ${LAYERS[to].name}: move what this file needs into the kernel, or move this file into ${LAYERS[to].name}`;
  if (from === 'inspector') return 'the inspector gets the runtime\'s data through its options (status(), metrics): the runtime\'s composition root passes them in';
  if (to === 'inspector') return 'only the runtime starts the inspector: take what you need from the kernel, or pass it in as an argument';
  return `move what ${here} needs into the kernel (src/*.ts), or pass it in as an argument from the composition root`;
}
