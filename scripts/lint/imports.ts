/**
 * The import check: reads every import of a file with the TypeScript compiler (static imports, type-only
 * ones too, `export ... from`, dynamic `import('...')`, `import('...')` types, `require('...')`),
 * resolves the relative ones to files, and holds each to the layer rules of ./layers.ts; then looks for
 * import cycles among the files read (a type-only import ties two files together all the same).
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { LAYERS, layerOf, mayImport, mayImportPackage, ruleBroken, whereItBelongs } from './layers.ts';
import { lineOf, toRel, type SourceFileEntry, type Violation } from './tree.ts';

export interface ImportRef {
  specifier: string;
  line: number;
  /** the file it names, relative to the checkout; null for a package or a path that names no file */
  target: string | null;
}

/** Every module specifier a file names, with its line (an `import()` of a computed name cannot be read, and is not). */
export function specifiersOf(file: SourceFileEntry): Array<{ specifier: string; line: number }> {
  const out: Array<{ specifier: string; line: number }> = [];
  const add = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node)) out.push({ specifier: node.text, line: lineOf(file.ast, node.getStart()) });
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) add(n.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) add(n.moduleReference.expression);
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument)) add(n.argument.literal);
    else if (ts.isCallExpression(n) && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === 'require'))) {
      add(n.arguments[0]);
    }
    ts.forEachChild(n, visit);
  };
  visit(file.ast);
  return out;
}

const isFile = (p: string) => existsSync(p) && statSync(p).isFile();

/** The file a relative specifier names: as written, `.js` for `.ts`, with an extension added, or a folder's index. */
export function resolveRelative(root: string, fromAbs: string, specifier: string): string | null {
  const base = path.resolve(path.dirname(fromAbs), specifier.split('?')[0]!);
  const candidates = [base, base.replace(/\.(m|c)?js$/, '.$1ts'), ...['.ts', '.mts', '.mjs', '.js'].map((e) => base + e), path.join(base, 'index.ts')];
  const hit = candidates.find(isFile);
  return hit ? toRel(root, hit) : null;
}

const isRelative = (s: string) => s.startsWith('./') || s.startsWith('../') || s === '.' || s === '..';

/** The imports of a file, the relative ones resolved. */
export function importsOf(root: string, file: SourceFileEntry): ImportRef[] {
  return specifiersOf(file).map(({ specifier, line }) => ({
    specifier,
    line,
    target: isRelative(specifier) ? resolveRelative(root, file.abs, specifier) : null,
  }));
}

/** The packages' name in a bare specifier: `@scope/pkg/sub` → `@scope/pkg`, `node:fs` stays. */
const packageOf = (s: string) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!);

function checkOne(file: SourceFileEntry, ref: ImportRef): Violation | null {
  const from = layerOf(file.rel);
  const at = { check: 'imports' as const, file: file.rel, line: ref.line };
  if (isRelative(ref.specifier) && ref.target === null) {
    return { ...at, what: `imports '${ref.specifier}', which names no file`, rule: 'every relative import names a file of the checkout', fix: 'correct the path (with its .ts extension), or remove the import' };
  }
  if (ref.target === null) {
    if (mayImportPackage(from, ref.specifier)) return null;
    return {
      ...at,
      what: `${LAYERS[from].name} imports the package '${packageOf(ref.specifier)}' ('${ref.specifier}')`,
      rule: LAYERS[from].rule,
      fix: `machines/ describe behaviour only: name an action or actor in setup() and let the runtime .provide() the implementation that uses ${packageOf(ref.specifier)} (in src/runtime/ or an adapter)`,
    };
  }
  const to = layerOf(ref.target);
  if (mayImport(from, to)) return null;
  return {
    ...at,
    what: `${LAYERS[from].name} imports ${LAYERS[to].name}: '${ref.specifier}' (${ref.target})`,
    rule: ruleBroken(from, to),
    fix: whereItBelongs(from, to),
  };
}

/** Every import of the files that breaks a layer rule or names no file. */
export function checkImports(root: string, files: readonly SourceFileEntry[]): Violation[] {
  const out: Violation[] = [];
  for (const file of files) {
    const refs = importsOf(root, file);
    // a file of an unknown folder is reported once, not once per import
    if (layerOf(file.rel) === 'unknown') {
      out.push({ check: 'imports', file: file.rel, line: 1, what: `${file.rel} is in a folder of src/ that is no layer`, rule: LAYERS.unknown.rule, fix: whereItBelongs('unknown', 'kernel') });
      continue;
    }
    for (const ref of refs) {
      const v = checkOne(file, ref);
      if (v) out.push(v);
    }
  }
  return out;
}

interface Edge {
  to: string;
  line: number;
  specifier: string;
}

/** The import graph among the files read (imports of other files, packages, left out). */
export function importGraph(root: string, files: readonly SourceFileEntry[]): Map<string, Edge[]> {
  const known = new Set(files.map((f) => f.rel));
  const graph = new Map<string, Edge[]>();
  for (const f of files) {
    const edges = importsOf(root, f)
      .filter((r) => r.target !== null && known.has(r.target))
      .map((r) => ({ to: r.target!, line: r.line, specifier: r.specifier }));
    graph.set(f.rel, edges);
  }
  return graph;
}

/** Strongly connected components (Tarjan), each as its files; iterative, so deep chains cannot overflow. */
export function stronglyConnected(graph: Map<string, Edge[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: Array<{ node: string; i: number }> = [{ node: start, i: 0 }];
    index.set(start, next), low.set(start, next++), stack.push(start), onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const edges = graph.get(top.node) ?? [];
      if (top.i < edges.length) {
        const to = edges[top.i++]!.to;
        if (!index.has(to)) {
          index.set(to, next), low.set(to, next++), stack.push(to), onStack.add(to);
          work.push({ node: to, i: 0 });
        } else if (onStack.has(to)) low.set(top.node, Math.min(low.get(top.node)!, index.get(to)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(top.node)!));
      if (low.get(top.node) === index.get(top.node)) {
        const component: string[] = [];
        let n: string;
        do {
          n = stack.pop()!;
          onStack.delete(n);
          component.push(n);
        } while (n !== top.node);
        components.push(component.sort());
      }
    }
  }
  return components;
}

/** The shortest cycle from `start` back to it, within `members` (breadth first). */
function shortestCycle(graph: Map<string, Edge[]>, start: string, members: Set<string>): Array<{ from: string; edge: Edge }> {
  const cameFrom = new Map<string, { from: string; edge: Edge }>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const edge of graph.get(node) ?? []) {
      if (!members.has(edge.to) || cameFrom.has(edge.to)) continue;
      cameFrom.set(edge.to, { from: node, edge });
      if (edge.to === start) queue.length = 0;
      else queue.push(edge.to);
    }
  }
  const steps: Array<{ from: string; edge: Edge }> = [];
  for (let at = start; ; ) {
    const step = cameFrom.get(at)!;
    steps.unshift(step);
    at = step.from;
    if (at === start) return steps;
  }
}

/** One violation per group of files that import each other in a ring, showing its shortest cycle. */
export function checkCycles(root: string, files: readonly SourceFileEntry[]): Violation[] {
  const graph = importGraph(root, files);
  const out: Violation[] = [];
  for (const component of stronglyConnected(graph)) {
    const start = component[0]!;
    const selfImport = (graph.get(start) ?? []).some((e) => e.to === start);
    if (component.length === 1 && !selfImport) continue;
    const cycle = shortestCycle(graph, start, new Set(component));
    const chain = cycle.map((s) => `${s.from}:${s.edge.line} imports '${s.edge.specifier}'`).join(' → ');
    const others = component.length > cycle.length ? ` (${component.length} files are tied in this ring: ${component.join(', ')})` : '';
    out.push({
      check: 'cycles',
      file: start,
      line: cycle[0]!.edge.line,
      what: `import cycle: ${chain} → back to ${start}${others}`,
      rule: 'no import cycles among files, type-only imports included (`import type` ties the files together all the same)',
      fix: 'move what the files share into a file lower down that both import (a type into the kernel or machines/), or pass it in as an argument',
    });
  }
  return out;
}
