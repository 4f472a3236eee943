/**
 * What the server reads of the runtime beyond dispatch and the operator actions: a message's fate,
 * the event journal, where the leader is. By default the runtime's own (`runtimePorts`); a host may
 * pass others (tests pass doubles). A route whose port is absent answers 501 `not-built`.
 */
import type { EventJournalView, MessageFate, Runtime } from '../api.ts';

export type { MessageFate };

/** The runtime's `fate()`: rejects with `unknown-message` for a seq never accepted. */
export type FateReader = Pick<Runtime, 'fate'>;

/** The runtime's event journal, for GET /v1/events (`follow` throws `invalid-request` for an id it cannot resume after). */
export type EventJournal = Pick<EventJournalView, 'follow'>;

/** Where the leader is, for a standby's 307. */
export interface LeaderLocator {
  /** the leader's advertised base URL (e.g. `https://baton-2:7443`), null when no leader is known or it advertised none */
  leaderUrl(): Promise<string | null>;
}

export interface RuntimePorts {
  fates?: FateReader;
  journal?: EventJournal;
  leader?: LeaderLocator;
}

/** The ports of the runtime itself. */
export function runtimePorts(runtime: Runtime): RuntimePorts {
  return { fates: runtime, journal: runtime.journal, leader: { leaderUrl: async () => runtime.leader()?.url ?? null } };
}
