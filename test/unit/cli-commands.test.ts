// The command table of `baton`: the bin's extra commands (the benchmarks, from scripts/) take their place in the help.
import { describe, expect, it } from 'vitest';
import { commandTable, type Command } from '../../src/tools/cli/main.ts';
import { bench } from '../../scripts/bench/command.ts';

describe('the command table', () => {
  it('lists the built-in commands in their order, the hidden runtime among them', () => {
    expect([...commandTable().keys()]).toEqual(['device', 'agent', 'serve', 'secret', 'agent-key', 'demo', 'scenario', 'sim', '_runtime', 'machines', 'status', 'devices', 'pause', 'resume', 'unblock', 'dead-letters', 'handover', 'wait', 'audit']);
  });

  it('puts an extra command after the one it names, or at the end', () => {
    const extra: Command = { summary: 'x', usage: 'baton x', options: {}, run: async () => 0 };
    expect([...commandTable({ bench, x: extra }).keys()]).toEqual(['device', 'agent', 'serve', 'secret', 'agent-key', 'demo', 'scenario', 'sim', 'bench', '_runtime', 'machines', 'status', 'devices', 'pause', 'resume', 'unblock', 'dead-letters', 'handover', 'wait', 'audit', 'x']);
  });
});
