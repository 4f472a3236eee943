/**
 * xstate inspection, fanned out to whoever watches the runtime's actors: the host's `inspect`
 * option, the inspector server (added by the composition root) and Stately's inspector.
 */
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';

export class Inspection {
  private readonly sinks: Array<(e: InspectionEvent) => void>;
  private statelyReady: Promise<void> | null = null;

  constructor(userInspect?: (e: InspectionEvent) => void) {
    this.sinks = userInspect ? [userInspect] : [];
  }

  /** pass to xstate's `inspect` option */
  readonly inspect = (e: InspectionEvent) => {
    for (const f of this.sinks) f(e);
  };

  add(sink: (e: InspectionEvent) => void): void {
    this.sinks.push(sink);
  }

  /** Loads Stately's WebSocket inspector (in the background) and forwards every event to it once loaded. */
  forwardToStately(url: string): void {
    this.statelyReady = import('@statelyai/inspect').then(({ createWebSocketInspector }) => {
      const s = createWebSocketInspector({ url, autoStart: true } as never);
      this.sinks.push((e) => s.inspect.next?.(e as never));
    });
  }

  /** Settles once the Stately forwarding is loaded or failed to (logged); undefined when there is none. */
  statelyLoaded(log: Logger): Promise<void> | undefined {
    return this.statelyReady?.catch((err) => log.warn({ err: (err as Error).message }, 'cannot forward to the Stately inspector'));
  }
}
