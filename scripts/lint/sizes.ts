/**
 * The size check: no function in src/ or machines/ longer than FUNCTION_LINES lines (counted from its
 * first token to its last, nested functions included), no file in src/ longer than FILE_LINES lines
 * unless its header comment (its first comment block) has a line starting "Longer than 300 lines:"
 * followed by the reason.
 */
import ts from 'typescript';
import { lineOf, type SourceFileEntry, type Violation } from './tree.ts';

export const FUNCTION_LINES = 80;
export const FILE_LINES = 300;
const FUNCTIONS_IN = ['src/', 'machines/'];
const FILES_IN = ['src/'];
const REASON = /^Longer than 300 lines:\s*\S/;

/** A name a reader can search for: the function's own, else the variable, property or call it sits in. */
function nameOf(fn: ts.FunctionLikeDeclaration): string {
  if (ts.isConstructorDeclaration(fn)) return 'constructor';
  if (fn.name && !ts.isComputedPropertyName(fn.name)) return fn.name.getText();
  const parent = fn.parent;
  if ((ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) && parent.name) return parent.name.getText();
  if (ts.isCallExpression(parent)) return `(anonymous, passed to ${parent.expression.getText().slice(0, 40)})`;
  for (let up: ts.Node | undefined = parent; up; up = up.parent) {
    if (ts.isFunctionLike(up) && up !== fn) return `(anonymous, in ${nameOf(up as ts.FunctionLikeDeclaration)})`;
  }
  return '(anonymous)';
}

function longFunctions(file: SourceFileEntry, limit: number): Violation[] {
  const out: Violation[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body) {
      const first = lineOf(file.ast, n.getStart());
      const lines = lineOf(file.ast, n.end) - first + 1;
      if (lines > limit) {
        out.push({
          check: 'sizes',
          file: file.rel,
          line: first,
          what: `function ${nameOf(n as ts.FunctionLikeDeclaration)} is ${lines} lines long (at most ${limit})`,
          rule: `no function in src/ or machines/ longer than ${limit} lines`,
          fix: 'split it into named parts with one job each, each taking what it needs as arguments (a closure over many variables is a sign of several jobs)',
        });
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(file.ast);
  return out;
}

/** The lines of the file's first comment block: one block comment, or a run of line comments. */
export function headerLines(file: SourceFileEntry): string[] {
  const start = ts.getShebang(file.text)?.length ?? 0;
  const ranges = ts.getLeadingCommentRanges(file.text, start) ?? [];
  const first = ranges[0];
  if (!first) return [];
  const block = first.kind === ts.SyntaxKind.MultiLineCommentTrivia ? [first] : ranges.slice(0, runOfLineComments(file.text, ranges));
  return block
    .flatMap((r) => file.text.slice(r.pos, r.end).split('\n'))
    .map((l) => l.replace(/^\s*(\/\*\*?|\*\/|\*|\/\/)?\s?/, '').replace(/\*\/\s*$/, '').trim());
}

/** How many of the leading `//` comments follow one another with no blank line between them. */
function runOfLineComments(text: string, ranges: ts.CommentRange[]): number {
  let n = 1;
  while (n < ranges.length && ranges[n]!.kind === ts.SyntaxKind.SingleLineCommentTrivia && !/\n\s*\n/.test(text.slice(ranges[n - 1]!.end, ranges[n]!.pos))) n++;
  return n;
}

const lineCount = (text: string) => text.split('\n').length - (text.endsWith('\n') ? 1 : 0);

function longFile(file: SourceFileEntry, limit: number): Violation | null {
  const lines = lineCount(file.text);
  if (lines <= limit || headerLines(file).some((l) => REASON.test(l))) return null;
  return {
    check: 'sizes',
    file: file.rel,
    line: 1,
    what: `file is ${lines} lines long (at most ${limit} without a stated reason)`,
    rule: `no file in src/ longer than ${limit} lines unless its header comment has a line "Longer than 300 lines: <why>"`,
    fix: 'split it into files with one job each (in the same folder), or, if it is one job, say why in its header comment',
  };
}

/** Every function and file over its limit, in the folders the rules cover. */
export function checkSizes(files: readonly SourceFileEntry[], limits = { functionLines: FUNCTION_LINES, fileLines: FILE_LINES }): Violation[] {
  const out: Violation[] = [];
  for (const file of files) {
    if (FILES_IN.some((d) => file.rel.startsWith(d))) {
      const v = longFile(file, limits.fileLines);
      if (v) out.push(v);
    }
    if (FUNCTIONS_IN.some((d) => file.rel.startsWith(d))) out.push(...longFunctions(file, limits.functionLines));
  }
  return out;
}
