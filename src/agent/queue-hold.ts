/**
 * The agent's hold on its queue: one mode at a time, and what moves it. `transition` is pure (it
 * returns the step to take); the consumer (consumer.ts) takes it. A hand-written state machine
 * rather than an xstate one: each mode carries the resources of its own instance (the subscription
 * of this consumer, the end of this release), which tell a late event of an older consumer or
 * release from a current one; and its steps run in place, synchronously, with errors thrown to the
 * caller, as before (an xstate actor queues events raised while it runs and swallows a thrown
 * action into an error state).
 *
 * Modes
 * - consuming  its consumer is attached (from the start, and again after each grant that finds
 *              it released); deliveries go to the lanes.
 * - releasing  it gives the queue back (its lease lapsed, it held messages without one, a device
 *              fenced it, or its broker connection dropped): the requests on the wire finish once,
 *              then the consumer goes together with every delivery it still holds
 *              (`Subscription.release`), so the runtime never sees the queue without a consumer
 *              while one of its messages is out. `afterwards`: a grant meanwhile makes it consume
 *              once released.
 * - released   no consumer, and none comes back on its own (not after a reconnect either): only
 *              a lease grant brings it back to consuming, which is how the runtime takes it back.
 * - stopped    for good: every event is ignored.
 *
 * Transitions
 * - released   `lease.granted`                      -> consuming
 * - consuming  `give-back` {why}                    -> releasing
 * - consuming  `consumer.lost` of this consumer     -> releasing (the broker took its deliveries back)
 * - consuming  `consumer.failed` of this consumer   -> released (the next grant tries again)
 * - releasing  `lease.granted`                      -> releasing, consuming afterwards
 * - releasing  `released` of this release           -> consuming if a grant came meanwhile and the
 *                                                      lease is still valid, else released
 * - any but stopped  `stop`                         -> stopped
 * Any other event means nothing in its mode.
 */
import type { Subscription } from '../ports.ts';

export type Hold =
  | { readonly mode: 'consuming'; sub: Promise<Subscription> }
  | { readonly mode: 'releasing'; readonly done: Promise<void>; afterwards: 'released' | 'consuming' }
  | { readonly mode: 'released' }
  | { readonly mode: 'stopped' };

export type HoldEvent =
  | { type: 'lease.granted' }
  | { type: 'give-back'; why: string }
  | { type: 'consumer.lost'; of: Hold }
  | { type: 'consumer.failed'; of: Hold }
  | { type: 'released'; of: Hold; leased: boolean }
  | { type: 'stop' };

/** What to do: the target mode, and from where (the consumer logs and acts by it). */
export type HoldStep =
  | { to: 'consuming'; from: 'released' | 'releasing' }
  | { to: 'releasing'; why: string }
  | { to: 'releasing'; afterwards: 'consuming' }
  | { to: 'released'; from: 'consuming' | 'releasing' }
  | { to: 'stopped' };

export const CONSUMER_LOST = 'the broker connection dropped (the broker took its deliveries back); consuming again on the next lease grant';

/** The step an event takes in the current mode, or null when it means nothing there. */
export function transition(hold: Hold, e: HoldEvent): HoldStep | null {
  if (hold.mode === 'stopped') return null;
  switch (e.type) {
    case 'stop':
      return { to: 'stopped' };
    case 'lease.granted':
      if (hold.mode === 'released') return { to: 'consuming', from: 'released' };
      if (hold.mode === 'releasing') return { to: 'releasing', afterwards: 'consuming' };
      return null;
    case 'give-back':
      return hold.mode === 'consuming' ? { to: 'releasing', why: e.why } : null;
    case 'consumer.lost':
      return hold === e.of ? { to: 'releasing', why: CONSUMER_LOST } : null;
    case 'consumer.failed':
      return hold === e.of ? { to: 'released', from: 'consuming' } : null;
    case 'released':
      if (hold !== e.of || hold.mode !== 'releasing') return null;
      return hold.afterwards === 'consuming' && e.leased ? { to: 'consuming', from: 'releasing' } : { to: 'released', from: 'releasing' };
  }
}
