/**
 * Who may ask the inspector, and who they are: its tokens (each with a label the audit names), the
 * token a request carries, and the `by` an operator action is recorded with.
 *
 * A token is `inspector.token` (labelled `token`) or one of `inspector.tokens` ({ label, token }):
 * when any is set, every request needs one. The audit's `by` is `token:<label>`, with the client's
 * own `X-Baton-By` (e.g. `cli:alice`) after it in parentheses; without a token (loopback only) the
 * client's word alone, since anyone on the host could say it. A client's word is cut and made
 * printable: it ends up on terminals and in the page.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BatonError } from '../errors.ts';
import { printable } from '../printable.ts';

export interface InspectorToken {
  /** names the holder in the audit (`token:<label>`): letters, digits, `.`, `_`, `-`, at most 40 */
  label: string;
  token: string;
}

const LABEL = /^[A-Za-z0-9._-]{1,40}$/;
/** longest `X-Baton-By` kept, in characters */
export const MAX_BY = 64;

/** The tokens an inspector accepts: `token` (label `token`) and each of `tokens`. */
export function tokenList(o: { token?: string | undefined; tokens?: InspectorToken[] | undefined }): InspectorToken[] {
  return [...(o.token ? [{ label: 'token', token: o.token }] : []), ...(o.tokens ?? [])];
}

/** Refuses, naming the option, tokens that are not a list of distinct labelled non-empty tokens. */
export function checkTokens(o: { token?: string | undefined; tokens?: unknown }): void {
  if (o.tokens === undefined) return;
  const bad = (what: string) => new BatonError('invalid-config', `createRuntime: option "inspector.tokens" ${what}`);
  if (!Array.isArray(o.tokens)) throw bad(`must be a list of { label, token } (got ${typeof o.tokens})`);
  const labels = new Set<string>(o.token ? ['token'] : []);
  const tokens = new Set<string>(o.token ? [o.token] : []);
  o.tokens.forEach((t: unknown, i) => {
    const { label, token } = (t ?? {}) as Partial<InspectorToken>;
    if (typeof label !== 'string' || !LABEL.test(label)) throw bad(`[${i}].label must be 1 to 40 letters, digits, ".", "_" or "-" (it is shown in the audit as token:<label>)`);
    if (typeof token !== 'string' || token === '') throw bad(`[${i}].token must be a non-empty string`);
    if (labels.has(label)) throw bad(`[${i}].label "${label}" is used twice${label === 'token' && o.token ? ' ("token" is the label of inspector.token)' : ''}`);
    if (tokens.has(token)) throw bad(`[${i}].token is the same as another token: each label needs its own, or the audit cannot tell them apart`);
    labels.add(label);
    tokens.add(token);
  });
}

/**
 * The token of a request: the one in `Authorization: Bearer <token>` when that header carries one,
 * else the first `?token=`; an empty value counts as absent. So a query never overrides a header.
 */
export function tokenOf(req: IncomingMessage, url: URL): string | null {
  const bearer = /^Bearer[ ]+(\S+)[ ]*$/i.exec(req.headers.authorization ?? '')?.[1];
  return bearer || url.searchParams.get('token') || null;
}

/** Compares in constant time, whatever the lengths (the digests have one length). */
const sameToken = (given: string, wanted: string) =>
  timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(wanted).digest());

/** The label of the token `given` is, or null. Every token is compared: the time says nothing of which matched. */
export function labelOf(given: string | null, tokens: InspectorToken[]): string | null {
  if (given === null) return null;
  let found: string | null = null;
  for (const t of tokens) if (sameToken(given, t.token) && found === null) found = t.label;
  return found;
}

/** The `by` of an action asked with this request: see the header. */
export function requester(req: IncomingMessage, label: string | null): string {
  const raw = req.headers['x-baton-by'];
  const said = typeof raw === 'string' && raw.trim() ? printable(raw.trim().slice(0, MAX_BY)) : null;
  if (label !== null) return said ? `token:${label} (${said})` : `token:${label}`;
  return said ?? 'inspector';
}
