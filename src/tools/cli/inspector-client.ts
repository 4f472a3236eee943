/**
 * How the operator's commands (`baton pause`, `dead-letters`, `wait`, ...) ask a running runtime:
 * through its inspector's API (`--url`, `--token`, or BATON_INSPECTOR_URL / BATON_INSPECTOR_TOKEN),
 * JSON in and out, saying who asks (`X-Baton-By: cli:<os user>`: the audit records it). An error
 * the runtime answers is thrown with its code and its words; one the CLI meets on the way (nothing
 * listens, no token) says what to check.
 */
import { userInfo } from 'node:os';
import { request } from 'undici';
import type { ActionResult } from '../../api.ts';
import { BatonError, type BatonErrorCode } from '../../errors.ts';
import { printable } from '../../printable.ts';
import type { CommandValues } from './command.ts';
import { DEFAULT_INSPECTOR_URL } from './devices.ts';
import { env } from './environment.ts';

export interface InspectorTarget {
  url: string;
  token?: string;
}

/** The options every operator command takes, for its `options` and its usage text. */
export const TARGET_OPTIONS = { url: { type: 'string' }, token: { type: 'string' } } as const;
export const TARGET_USAGE = `  --url: the runtime's inspector (default ${DEFAULT_INSPECTOR_URL}); --token: its token\n  env: BATON_INSPECTOR_URL, BATON_INSPECTOR_TOKEN`;

/** The inspector named by `--url` / `--token`, else the environment, else the default address. */
export function targetOf(v: CommandValues): InspectorTarget {
  const token = (v.token as string | undefined) ?? env.inspectorToken;
  return { url: (v.url as string | undefined) ?? env.inspectorUrl ?? DEFAULT_INSPECTOR_URL, ...(token ? { token } : {}) };
}

/** Who the audit says asked: `cli:<os user>`. */
export function cliUser(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

const ASK_WITHIN_MS = 10_000;

/**
 * One request to the inspector's API; resolves with the JSON it answers. `waitMs`: how long the
 * answer may take (a `wait` is answered only once drained), beyond the usual few seconds.
 */
export async function ask<T>(t: InspectorTarget, method: 'GET' | 'POST', path: string, body?: object, waitMs = 0): Promise<T> {
  let url: URL;
  try {
    url = new URL(path.replace(/^\//, ''), t.url.endsWith('/') ? t.url : `${t.url}/`);
  } catch {
    throw new BatonError('invalid-config', `--url ${JSON.stringify(t.url)} is not a URL (e.g. ${DEFAULT_INSPECTOR_URL})`);
  }
  const headers: Record<string, string> = { 'x-baton-by': cliUser(), accept: 'application/json' };
  if (t.token) headers.authorization = `Bearer ${t.token}`;
  if (method === 'POST') headers['content-type'] = 'application/json';
  const within = ASK_WITHIN_MS + waitMs;
  let status: number;
  let text: string;
  try {
    const res = await request(url, { method, headers, ...(method === 'POST' ? { body: JSON.stringify(body ?? {}) } : {}), headersTimeout: within, bodyTimeout: within });
    status = res.statusCode;
    text = await res.body.text();
  } catch (err) {
    const why = (err as { code?: string }).code ?? (err as Error).message;
    throw new BatonError('timeout', `nothing answers at ${url} (${why}) within ${within} ms: is a runtime running with its inspector on? Start it with createRuntime({ inspector: { port } }) (or --inspect), and give its address with --url or BATON_INSPECTOR_URL`);
  }
  if (status === 401) throw new BatonError('invalid-config', `the inspector at ${url} ${t.token ? 'refused the token given' : 'wants a token'}: give it with --token or BATON_INSPECTOR_TOKEN`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new BatonError(status === 404 ? 'unsupported' : 'invalid-config', `the server at ${url} answered ${status} without JSON (${printable(text.slice(0, 200).trim())}): is it the inspector of a baton runtime that serves the operator actions?`);
  }
  const error = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (status >= 400 || error) {
    const code = typeof error?.code === 'string' ? error.code : 'unsupported';
    throw new BatonError(code as BatonErrorCode, printable(typeof error?.message === 'string' ? error.message : `the inspector answered ${status}`), { status });
  }
  return json as T;
}

/** The line an action prints: what happened, in the runtime's words. */
export function actionLine(r: ActionResult): string {
  return printable(`${r.outcome === 'done' ? 'done' : 'already so'}: ${r.detail} (audit #${r.auditId})`);
}
