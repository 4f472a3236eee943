/** `baton _runtime` (internal, not listed): a runtime driven by `baton scenario run` over IPC. */
import { runtimeProcess } from '../scenario/runtime-process.ts';
import type { Command } from './command.ts';

export const internalRuntime: Command = {
  summary: '',
  usage: 'internal: a runtime driven by `baton scenario run` over IPC',
  options: {},
  async run() {
    await runtimeProcess(JSON.parse(process.env.BATON_SCENARIO_RUNTIME ?? '{}'));
    return new Promise<never>(() => {});
  },
};
