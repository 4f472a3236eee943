// The deployment secret of the unit tests and what it signs: hand-made heartbeats, receipts and
// grants as a real agent or runtime of that deployment would send them.
import { agentCredential, agentKey, seal, signMessage, streamKey } from '../../src/trust.ts';
import type { WireMessage } from '../../src/ports.ts';

/** The tests' deployment secret (a fixed one: runs replay the same bytes). */
export const TEST_SECRET = 'test-secret-of-at-least-32-characters-0123456789';

/** What a runtime of the test deployment is given. */
export const runtimeTrust = { secret: TEST_SECRET };

/** What agent `id` of the test deployment is given. */
export const agentTrust = (id: string) => ({ key: agentCredential(TEST_SECRET, id) });

/** A heartbeat of agent `agentId` as that agent sends it. */
export const signedHeartbeat = (agentId: string, beat: number, incarnation = `${agentId}#1`) =>
  seal(agentKey(TEST_SECRET, agentId), 'heartbeats', agentId, { type: 'heartbeat', agentId, host: 'h', pid: 1, sentAt: 0, beat, incarnation });

/** A receipt of agent `agentId` (the epoch it held) as that agent sends it. */
export const signedReceipt = (agentId: string, receipt: Record<string, unknown>) => seal(agentKey(TEST_SECRET, agentId), 'receipts', agentId, { agentId, ...receipt });

/** A grant to agent `agentId` as a runtime of the test deployment sends it. */
export const signedGrant = (agentId: string, grant: Record<string, unknown>) => seal(agentKey(TEST_SECRET, agentId), 'control', agentId, { type: 'lease', agentId, ...grant });

/** A config message as a runtime of the test deployment publishes it. */
export const signedMessage = (m: WireMessage) => signMessage(streamKey(TEST_SECRET), m);
