/**
 * Which agent each epoch was granted to, as far as the leading runtime knows: a receipt counts
 * only when the agent that sent it is the one that epoch belongs to (an agent may still report, late,
 * what it applied under an epoch that has since passed; another agent never can). Learnt from the
 * lease granter's targets as they change and, when a leader term begins, from the stored switch
 * history (who each switch went from and to) and the recorded assignment. Bounded: the newest epochs.
 */
import type { Assignment, SwitchRecord } from '../ports.ts';

/** epochs remembered: far more than the switches whose receipts can still be on their way */
const KEPT = 1024;

export class EpochHolders {
  private readonly holders = new Map<number, string>();

  /** `agentId` holds (or held) `epoch`. */
  record(epoch: number, agentId: string): void {
    if (this.holders.get(epoch) === agentId) return;
    this.holders.set(epoch, agentId);
    if (this.holders.size > KEPT) this.holders.delete(Math.min(...this.holders.keys()));
  }

  /** What the store says, when a leader term begins. */
  load(assignment: Assignment | null, switches: SwitchRecord[]): void {
    for (const s of switches) {
      // a switch to epoch e went from the holder of e - 1 to its candidate (once chosen)
      if (s.fromAgent) this.record(s.epoch - 1, s.fromAgent);
      if (s.toAgent) this.record(s.epoch, s.toAgent);
    }
    // before its candidate is chosen, a switch's row names the old agent at the new epoch
    if (assignment && assignment.phase !== 'switching') this.record(assignment.epoch, assignment.agentId);
  }

  /** The agent `epoch` was granted to, or null when this runtime does not know it. */
  holder(epoch: number): string | null {
    return this.holders.get(epoch) ?? null;
  }
}
