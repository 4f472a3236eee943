/**
 * The files the lint step reads: every TypeScript and JavaScript module under the given folders of a
 * checkout, parsed once with the TypeScript compiler (no type information: the checks are syntactic,
 * `tsc --noEmit` does the typing), and how a violation is reported.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** The folders whose files are checked (test/ may import anything and is not read). */
export const CHECKED_FOLDERS = ['machines', 'src', 'scripts'] as const;

const MODULE_EXTENSIONS = ['.ts', '.mts', '.cts', '.mjs', '.js', '.cjs'];

export interface SourceFileEntry {
  /** path from the checkout's root, with forward slashes: `src/runtime/runtime.ts` */
  rel: string;
  abs: string;
  text: string;
  ast: ts.SourceFile;
}

/** A broken rule: where, what, which rule, and what to do about it. */
export interface Violation {
  check: 'imports' | 'cycles' | 'sizes';
  file: string;
  line: number;
  /** one line: what was found */
  what: string;
  /** the rule it breaks */
  rule: string;
  /** where the thing belongs, or how to mend it */
  fix: string;
}

export const isModule = (file: string) => MODULE_EXTENSIONS.some((e) => file.endsWith(e)) && !file.endsWith('.d.ts');

export const toRel = (root: string, abs: string) => path.relative(root, abs).split(path.sep).join('/');

function scriptKind(file: string): ts.ScriptKind {
  return /\.[mc]?js$/.test(file) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
}

/** Every module under `folders` of `root` (node_modules skipped), sorted by path. */
export function readTree(root: string, folders: readonly string[] = CHECKED_FOLDERS): SourceFileEntry[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (isModule(p)) found.push(p);
    }
  };
  for (const f of folders) if (existsSync(path.join(root, f))) walk(path.join(root, f));
  return found.sort().map((abs) => {
    const text = readFileSync(abs, 'utf8');
    return { rel: toRel(root, abs), abs, text, ast: ts.createSourceFile(abs, text, ts.ScriptTarget.Latest, true, scriptKind(abs)) };
  });
}

/** 1-based line of a position. */
export const lineOf = (ast: ts.SourceFile, pos: number) => ast.getLineAndCharacterOfPosition(pos).line + 1;

/** A violation as an operator reads it: `file:line  what`, then the rule and the fix, indented. */
export function formatViolation(v: Violation, label = 'error'): string {
  return `${v.file}:${v.line}  ${label}: ${v.what}\n    rule: ${v.rule}\n    fix:  ${v.fix}`;
}
