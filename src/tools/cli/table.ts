/** The CLI's tables: columns padded to their widest cell, the last one left as it is; every cell made printable. */
import { printable } from '../../printable.ts';

export function table(rows: string[][]): string[] {
  const cells = rows.map((r) => r.map(printable));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}
