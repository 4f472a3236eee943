/**
 * `dispatch()`: a message is taken only while the runtime runs and leads; it is validated, gets its
 * seq, and enters the dispatcher's mailbox, which answers once it is durable (published or parked).
 * The calls between validation and the mailbox (waiting for a seq block) are counted: `stop()`
 * waits for them, since their messages are accepted.
 */
import type { Dispatched, RuntimeStatus } from '../api.ts';
import { BatonError, isBatonError } from '../errors.ts';
import { validateMessage, type ConfigMessage } from '../wire.ts';
import type { DispatcherActor } from './dispatcher-provided.ts';
import type { Leadership } from './leadership.ts';
import { stopped } from './refusals.ts';
import type { SeqAllocator } from './seq-allocator.ts';

export interface IntakeDeps {
  state(): RuntimeStatus['state'];
  leadership: Pick<Leadership, 'leading' | 'notLeader'>;
  seqs: Pick<SeqAllocator, 'take'>;
  dispatcher: Pick<DispatcherActor, 'send' | 'getSnapshot'>;
  deviceSet: Set<string>;
  maxMessageBytes: number;
}

export class Intake {
  /** dispatch() calls between validation and the dispatcher's mailbox (waiting for a seq block) */
  private intake = 0;
  private intakeDrained: (() => void) | null = null;

  constructor(private readonly d: IntakeDeps) {}

  /** calls on their way to the mailbox */
  get pending(): number {
    return this.intake;
  }

  /** Resolves once the calls on their way have reached the mailbox (or failed). */
  drained(): Promise<void> {
    return new Promise<void>((resolve) => (this.intakeDrained = resolve));
  }

  readonly dispatch = async (input: ConfigMessage): Promise<Dispatched> => {
    const { leadership, dispatcher } = this.d;
    const state = this.d.state();
    if (state !== 'running') {
      throw state === 'created' || state === 'starting'
        ? new BatonError('runtime-not-started', 'dispatch() before start() finished; await runtime.start() first. The message was not stored')
        : stopped();
    }
    if (!leadership.leading) throw leadership.notLeader();
    const m = validateMessage(input, (id) => this.d.deviceSet.has(id), this.d.maxMessageBytes);
    this.intake++;
    return new Promise<Dispatched>((resolve, reject) => {
      this.d.seqs.take(m.deviceId, (err, seq) => {
        if (--this.intake === 0) this.intakeDrained?.();
        if (isBatonError(err, 'not-leader')) return reject(leadership.notLeader());
        if (err) return reject(new BatonError('database-unavailable', `could not reserve a seq for device ${m.deviceId} (${err.message}); the message was not stored`, { deviceId: m.deviceId }, { cause: err }));
        // the term may have ended while the seq was reserved: a seq of an ended term is never sent
        if (!leadership.leading) return reject(leadership.notLeader());
        if (dispatcher.getSnapshot().status !== 'active') return reject(stopped());
        dispatcher.send({ type: 'dispatch.message', message: { ...m, body: m.body ?? null, seq }, reply: { resolve, reject } });
      });
    });
  };
}
