/**
 * The operator actions of the Runtime interface that are not built yet: each refuses with
 * `unsupported`, naming itself. Each part that builds one takes its entry out of here.
 */
import type { Runtime } from '../api.ts';
import { BatonError } from '../errors.ts';

type Actions = Pick<Runtime, 'pause' | 'resume' | 'unblock'>;

const unbuilt = (name: string) => () => {
  throw new BatonError('unsupported', `runtime.${name}() is not built in this version of baton`);
};

export function unbuiltActions(): Actions {
  return {
    pause: unbuilt('pause'),
    resume: unbuilt('resume'),
    unblock: unbuilt('unblock'),
  };
}
