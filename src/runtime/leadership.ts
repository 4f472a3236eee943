/**
 * Leadership as the runtime wires it: the elector over the leadership row (leader-elector.ts), what
 * the beginning and the end of a term set going, in this order, and the checks every leader-only
 * action makes (the term it began in still runs; the error a standby answers).
 */
import type { Logger } from 'pino';
import type { Clock, LeadershipStore, LeaderTerm } from '../ports.ts';
import type { CoordinatorEvent } from '../../machines/coordinator.machine.ts';
import type { DispatcherEvent } from '../../machines/dispatcher.machine.ts';
import type { Emit } from './events.ts';
import { baseUrl } from '../config.ts';
import { BatonError } from '../errors.ts';
import { LeaderElector } from './leader-elector.ts';
import type { LeaseGranter } from './lease-granter.ts';
import { notLeader } from './refusals.ts';
import type { SeqAllocator } from './seq-allocator.ts';

export interface LeadershipDeps {
  store: LeadershipStore;
  clock: Clock;
  log: Logger;
  runtimeId: string;
  ttlMs: number;
  /** the base URL this runtime advertises with its term (null: none) */
  advertise: string | null;
  seqs: Pick<SeqAllocator, 'beginTerm' | 'endTerm'>;
  granter: Pick<LeaseGranter, 'leaderWon' | 'leaderLost'>;
  /** receipts are read while leading (receipt-reader.ts) */
  readReceipts(on: boolean): void;
  emit: Emit;
  coordinator(): { send(e: CoordinatorEvent): void };
  dispatcher(): { send(e: DispatcherEvent): void };
}

export class Leadership {
  readonly elector: LeaderElector;

  constructor(private readonly d: LeadershipDeps) {
    const { seqs, granter, emit, runtimeId } = d;
    this.elector = new LeaderElector({
      store: d.store,
      clock: d.clock,
      logger: d.log,
      id: runtimeId,
      ttlMs: d.ttlMs,
      url: d.advertise,
      onWon: (term) => {
        // before the coordinator acts: seqs come from this term's reservations, grants wait out the last term's leases
        seqs.beginTerm(term);
        granter.leaderWon(term);
        d.readReceipts(true);
        emit('leader.won', { runtimeId });
        d.coordinator().send({ type: 'leader.won' });
      },
      onLost: (holder) => {
        seqs.endTerm();
        granter.leaderLost();
        d.readReceipts(false);
        d.coordinator().send({ type: 'leader.lost' });
        d.dispatcher().send({ type: 'dispatcher.quiesce' });
        emit('leader.lost', { runtimeId, holder });
      },
    });
  }

  /** true only while this runtime's lease is certainly valid by its own clock */
  get leading(): boolean {
    return this.elector.leading;
  }

  /** the term this runtime leads in right now, or null */
  currentTerm(): LeaderTerm | null {
    return this.elector.currentTerm();
  }

  /** who leads as far as this runtime knows: itself while leading, never itself otherwise */
  leader(): string | null {
    return this.elector.leader();
  }

  /** `Runtime.leader()`: who leads as far as this runtime knows, and the base URL it advertised */
  readonly leaderAt = () => this.elector.leaderAt();

  /** `Runtime.advertise()`: the base URL stored with this runtime's leader term from its next take or renewal */
  readonly advertise = (url: string | null) => {
    const bad = baseUrl(url);
    if (bad) throw new BatonError('invalid-config', `advertise(): the URL must be ${bad} (got ${typeof url}); nothing changed`, { option: 'advertise' });
    this.elector.url = url;
  };

  // A publish goes out only while the leader term it was made in lasts: one held back by a dropped
  // connection (or a pause) and sent after the leadership moved would land in a queue the new
  // leader has already moved, after newer messages; it is refused instead (the host sends it again).
  readonly whileThisTerm = () => {
    const term = this.elector.currentTerm()?.epoch;
    return () => (term !== undefined && this.elector.currentTerm()?.epoch === term ? null : 'this runtime no longer leads');
  };

  /** what a standby answers: who leads, as far as it knows */
  readonly notLeader = () => notLeader(this.d.runtimeId, this.elector.leader());
}
