/**
 * What the server needs of the runtime beyond the `Runtime` interface (src/api.ts): narrow ports for
 * the parts built on the runtime's side (issue 16, branch serve-runtime). Each is optional: a route
 * whose port is absent answers 501 `not-built`. When the runtime grows these, the composition root
 * (./server.ts, or a host) passes them in; nothing here imports the runtime.
 */

/** A message's fate, as GET /v1/messages/{deviceId}/{seq} answers it. */
export interface MessageFate {
  deviceId: string;
  seq: number;
  fate: 'accepted' | 'applied' | 'dead-lettered';
  /** the device's answer, when it gave one (dead-lettered: its refusal) */
  answer?: { status: number | null; reason: string };
}

/** The runtime's `fate()`: rejects with `unknown-message` for a seq never accepted, `not-leader` on a standby. */
export interface FateReader {
  fate(message: { deviceId: string; seq: number }, opts?: { waitMs?: number }): Promise<MessageFate>;
}

/** One entry of the event journal: `id` rises (the SSE `id:` a client resumes after with Last-Event-ID). */
export interface JournalEvent {
  id: number;
  type: 'applied' | 'dead-lettered' | 'switch' | 'alarm';
  data: unknown;
}

/** The event journal, for GET /v1/events. */
export interface EventJournal {
  /**
   * Calls `listener` with every event after `afterId` (null: only new ones) in id order, then with
   * each new one as it comes, until the returned function is called. Rejects, or throws, with
   * `invalid-request` when `afterId` is older than what the journal keeps (the client must re-read state).
   */
  follow(afterId: number | null, listener: (e: JournalEvent) => void): () => void;
}

/** Where the leader is, for a standby's 307. */
export interface LeaderLocator {
  /** the leader's advertised base URL (e.g. `https://baton-2:7443`), null when no leader is known or it advertised none */
  leaderUrl(): Promise<string | null>;
}

/** The runtime's side of the server, all optional (see the header). */
export interface RuntimePorts {
  fates?: FateReader;
  journal?: EventJournal;
  leader?: LeaderLocator;
}
