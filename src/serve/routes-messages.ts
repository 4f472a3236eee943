/**
 * API v1's messages: accept one (POST /v1/messages) or a batch (POST /v1/batches), each durable before
 * it is answered (202, as `dispatch()` resolves), behind an optional Idempotency-Key (./idempotency.ts);
 * and read a message's fate (GET /v1/messages/{deviceId}/{seq}, through the runtime's FateReader).
 *
 * A batch is checked whole before any of it is dispatched (a bad message refuses the batch, naming its
 * index), then dispatched in request order, which is seq order per device. Should the runtime refuse
 * part of it midway (the broker lost, leadership lost), the answer says which messages were accepted
 * (503, `details.accepted`), and that answer is the one kept for its Idempotency-Key: a retry with that
 * key must not dispatch the accepted ones again.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import type { Runtime } from '../api.ts';
import { BatonError, isBatonError } from '../errors.ts';
import { validateMessage, type ConfigMessage as Message } from '../wire.ts';
import { errorBody, statusOf } from './error-answers.ts';
import type { Idempotency, StoredAnswer } from './idempotency.ts';
import type { FateReader } from './runtime-ports.ts';
import * as S from './schemas.ts';

export interface MessageRoutesOptions {
  runtime: Pick<Runtime, 'dispatch' | 'devices'>;
  idempotency: Idempotency;
  fates: FateReader | undefined;
  /** the largest message body, bytes (a batch is checked against it before any is dispatched) */
  maxMessageBytes: number;
}

const json = (status: number, v: unknown): StoredAnswer => ({ status, body: JSON.stringify(v) });

/** Dispatches a checked batch in order; the answer to keep (202, or 503 naming what was accepted). */
async function dispatchAll(runtime: MessageRoutesOptions['runtime'], messages: Message[]): Promise<StoredAnswer> {
  const results = await Promise.allSettled(messages.map((m) => runtime.dispatch(m)));
  const accepted = results.flatMap((r, index) => (r.status === 'fulfilled' ? [{ index, ...r.value }] : []));
  const failed = results.findIndex((r) => r.status === 'rejected');
  if (failed < 0) return json(202, { accepted: accepted.map(({ deviceId, seq }) => ({ deviceId, seq })) });
  const err = (results[failed] as PromiseRejectedResult).reason;
  if (accepted.length === 0) throw err; // refused as a whole: nothing was accepted
  const code = isBatonError(err) ? err.code : 'internal';
  const e = new BatonError(
    code,
    `${accepted.length} of ${messages.length} messages were accepted (they will be delivered) before the runtime refused message ${failed}: ${(err as Error).message}; send the others again, with a new Idempotency-Key`,
    { accepted, refusedFrom: failed },
  );
  return json(code === 'internal' ? 500 : statusOf(code), errorBody(e));
}

export const messageRoutes: FastifyPluginAsyncTypebox<MessageRoutesOptions> = async (app, o) => {
  let known: Set<string> | null = null;
  const knownDevice = async () => (known ??= new Set((await o.runtime.devices()).map((d) => d.deviceId)));

  /** sends a stored answer as it was serialised (a repeat gets 200 for a 202, and says it is one) */
  const send = (typed: unknown, a: StoredAnswer & { replayed: boolean }) => {
    const reply = typed as FastifyReply;
    void reply.code(a.replayed && a.status === 202 ? 200 : a.status).type('application/json; charset=utf-8');
    if (a.replayed) void reply.header('idempotent-replayed', 'true');
    return reply.serializer((p) => p as string).send(a.body);
  };

  app.post('/v1/messages', {
    schema: { summary: 'accept one message (durable before the answer)', tags: ['messages'], headers: S.IdempotencyHeaders, body: S.ConfigMessage, response: { 202: S.Accepted, 200: S.Accepted, ...S.errors(400, 401, 409, 422, 503) } },
  }, async (req, reply) => {
    const a = await o.idempotency.run(req.headers['idempotency-key'], 'POST /v1/messages', req.body, async () => json(202, await o.runtime.dispatch(req.body as Message)));
    return send(reply, a);
  });

  app.post('/v1/batches', {
    schema: { summary: 'accept a batch of messages, in order, as a whole', tags: ['messages'], headers: S.IdempotencyHeaders, body: S.Batch, response: { 202: S.BatchAccepted, 200: S.BatchAccepted, ...S.errors(400, 401, 409, 422, 503) } },
  }, async (req, reply) => {
    const devices = await knownDevice();
    const messages = req.body.messages.map((m, i) => {
      try {
        return validateMessage(m, (id) => devices.has(id), o.maxMessageBytes);
      } catch (err) {
        if (!isBatonError(err)) throw err;
        throw new BatonError(err.code, `messages[${i}]: ${err.message}; the batch was refused as a whole`, { ...err.details, index: i });
      }
    });
    const a = await o.idempotency.run(req.headers['idempotency-key'], 'POST /v1/batches', req.body, () => dispatchAll(o.runtime, messages));
    return send(reply, a);
  });

  app.get('/v1/messages/:deviceId/:seq', {
    schema: { summary: "a message's fate: accepted, applied or dead-lettered (with the device's answer)", tags: ['messages'], params: S.MessageParams, querystring: S.FateQuery, response: { 200: S.Fate, ...S.errors(400, 401, 404, 501) } },
  }, async (req) => {
    if (!o.fates) throw new BatonError('not-built', "reading a message's fate needs the runtime's fate() (not in this build); GET /v1/devices shows each device's watermark");
    const { deviceId, seq } = req.params;
    return o.fates.fate({ deviceId, seq }, req.query.waitMs !== undefined ? { waitMs: req.query.waitMs } : {});
  });
};
