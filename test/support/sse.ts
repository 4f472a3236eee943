// Reads a Server-Sent Events answer: calls `onEvent` with the fields of each event block (`id`,
// `event`, `data`; comment lines left out) as the blocks arrive, whatever the chunking.
import type { IncomingMessage } from 'node:http';

export function readSse(res: IncomingMessage, onEvent: (fields: Record<string, string>) => void): { rest(): string } {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => {
    text += c;
    let end;
    while ((end = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, end);
      text = text.slice(end + 2);
      const lines = block.split('\n').filter((l) => !l.startsWith(':') && l.includes(':'));
      if (lines.length) onEvent(Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).replace(/^ /, '')])));
    }
  });
  return { rest: () => text };
}
