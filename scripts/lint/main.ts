/**
 * `npm run lint` (after `tsc --noEmit`): the import rules of src/README.md, no import cycles, and the
 * size limits, over machines/, src/ and scripts/. Prints every violation with file:line, the rule it
 * breaks and what to do; exits 1 when any is an error.
 *
 * BATON_LINT_SIZES=warn prints size violations as warnings that do not fail the step (for the time
 * the long functions are being split; to be removed then).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkCycles, checkImports } from './imports.ts';
import { checkSizes } from './sizes.ts';
import { formatViolation, readTree, type Violation } from './tree.ts';

export interface LintResult {
  errors: Violation[];
  warnings: Violation[];
}

/** Runs every check over the checkout at `root`; size violations are warnings when `sizes` is 'warn'. */
export function lint(root: string, sizes: 'error' | 'warn' = 'error'): LintResult {
  const files = readTree(root);
  const structure = [...checkImports(root, files), ...checkCycles(root, files)];
  const tooLong = checkSizes(files);
  return sizes === 'warn' ? { errors: structure, warnings: tooLong } : { errors: [...structure, ...tooLong], warnings: [] };
}

function sizesMode(value: string | undefined): 'error' | 'warn' {
  if (value === undefined || value === '' || value === 'error') return 'error';
  if (value === 'warn') return 'warn';
  console.error(`lint: BATON_LINT_SIZES must be "warn" or "error" (got ${JSON.stringify(value)})`);
  process.exit(2);
}

function main(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const { errors, warnings } = lint(root, sizesMode(process.env.BATON_LINT_SIZES));
  for (const w of warnings) console.log(formatViolation(w, 'warning') + '\n');
  for (const e of errors) console.log(formatViolation(e) + '\n');
  const count = (check: Violation['check']) => errors.filter((e) => e.check === check).length;
  const summary = `lint: ${count('imports')} import, ${count('cycles')} cycle, ${count('sizes')} size error(s)`;
  console.log(warnings.length > 0 ? `${summary}; ${warnings.length} size warning(s) (BATON_LINT_SIZES=warn)` : summary);
  process.exitCode = errors.length > 0 ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
