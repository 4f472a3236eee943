/** `baton machines`: the statecharts as Mermaid, JSON or DOT. */
import { BatonError } from '../../errors.ts';
import { machines as statecharts, toDot, toGraph, toMermaid } from '../../inspector/machine-export.ts';
import { out, type Command } from './command.ts';

export const machines: Command = {
  summary: 'print the statecharts (coordinator, dispatcher, agent) as Mermaid, JSON or DOT',
  usage: 'baton machines [--format mermaid|json|dot] [--machine coordinator|dispatcher|agent]',
  options: { format: { type: 'string' }, machine: { type: 'string' } },
  async run(v) {
    const format = (v.format as string) ?? 'mermaid';
    if (!['mermaid', 'json', 'dot'].includes(format)) throw new BatonError('invalid-config', `--format must be mermaid, json or dot (got ${JSON.stringify(format)})`);
    const names = v.machine ? [v.machine as string] : Object.keys(statecharts);
    for (const name of names) {
      const m = statecharts[name];
      if (!m) throw new BatonError('invalid-config', `--machine must be one of ${Object.keys(statecharts).join(', ')} (got ${JSON.stringify(name)})`);
      if (format === 'json') out(JSON.stringify(toGraph(m), null, 2));
      else if (format === 'dot') out(toDot(m));
      else out(`%% ${name}\n${toMermaid(m)}\n`);
    }
  },
};
