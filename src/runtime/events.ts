/** The runtime's events (`RuntimeEvents` in src/api.ts), typed: its parts emit them; hosts and tests await them instead of sleeping. */
import { EventEmitter } from 'node:events';
import type { Runtime, RuntimeEvents } from '../api.ts';

export type Emit = <K extends keyof RuntimeEvents>(k: K, e: RuntimeEvents[K]) => boolean;

export class RuntimeEventEmitter {
  private readonly emitter = new EventEmitter();
  readonly emit: Emit = (k, e) => this.emitter.emit(k, e);
  readonly on: Runtime['on'] = (k, l) => void this.emitter.on(k, l);
  /** `on`, but called before the listeners added so far (the event journal records a cause before the effects other listeners emit) */
  readonly first: Runtime['on'] = (k, l) => void this.emitter.prependListener(k, l);
  readonly off: Runtime['off'] = (k, l) => void this.emitter.off(k, l);
  readonly once: Runtime['once'] = (k) => new Promise((resolve) => this.emitter.once(k, resolve));
}
