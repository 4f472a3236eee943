/**
 * The TypeBox schemas of API v1: what the server validates requests with, and what the OpenAPI
 * document (/v1/openapi.json) is generated from. One place, so the document cannot drift from the checks.
 */
import { Type, type Static } from 'typebox';

/** `{ error: { code, message, details } }`: every 4xx and 5xx. */
export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: "a BatonError code (src/errors.ts), e.g. 'invalid-request', 'not-leader'" }),
      message: Type.String({ description: 'what was wrong and what happens next' }),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
);

const DeviceId = Type.String({ minLength: 1, maxLength: 200, description: 'a configured device' });

/** A ConfigMessage as `dispatch()` takes it; the runtime checks the rest (path rule, key rule, body size). */
export const ConfigMessage = Type.Object(
  {
    deviceId: DeviceId,
    method: Type.Union([Type.Literal('PUT'), Type.Literal('POST'), Type.Literal('PATCH'), Type.Literal('DELETE')]),
    path: Type.String({ minLength: 1, description: 'the device API path, starting with /' }),
    body: Type.Optional(Type.Unknown({ description: 'any JSON value (null when absent)' })),
    key: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: "the message's own key, sent to the device as its Idempotency-Key" })),
  },
  { additionalProperties: false },
);
export type ConfigMessageBody = Static<typeof ConfigMessage>;

export const Accepted = Type.Object({ deviceId: Type.String(), seq: Type.Integer({ minimum: 1 }) });

export const Batch = Type.Object({ messages: Type.Array(ConfigMessage, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false });
export type BatchBody = Static<typeof Batch>;
export const BatchAccepted = Type.Object({ accepted: Type.Array(Accepted) });

/** The `Idempotency-Key` header: 1..200 printable ASCII characters. */
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$', description: 'a repeat with the same key and body answers the first answer (24 h by default)' })),
});

export const MessageParams = Type.Object({ deviceId: DeviceId, seq: Type.Integer({ minimum: 1 }) });
export const FateQuery = Type.Object({ waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000, description: 'wait until it is applied or dead-lettered, at most this long' })) }, { additionalProperties: false });
export const Fate = Type.Object({
  deviceId: Type.String(),
  seq: Type.Integer(),
  fate: Type.Union([Type.Literal('accepted'), Type.Literal('applied'), Type.Literal('dead-lettered')]),
  answer: Type.Optional(Type.Object({ status: Type.Union([Type.Integer(), Type.Null()]), reason: Type.String(), response: Type.Union([Type.String(), Type.Null()]) })),
  deadLetter: Type.Optional(Type.Object({ id: Type.Integer(), resolution: Type.Union([Type.Null(), Type.Object({}, { additionalProperties: true })]) })),
  source: Type.Union([Type.Literal('ledger'), Type.Literal('stored')], { description: 'ledger: the leader\'s receipts; stored: the durable tables (a standby)' }),
});

export const DeviceParams = Type.Object({ id: DeviceId });
export const DeadLetterParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });
export const Empty = Type.Object({}, { additionalProperties: false });
export const UnblockBody = Type.Object({ action: Type.Union([Type.Literal('retry'), Type.Literal('skip')]) }, { additionalProperties: false });
export const DropBody = Type.Object({ reason: Type.String({ minLength: 1, maxLength: 1000 }) }, { additionalProperties: false });
export const HandoverBody = Type.Object({ to: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false });
export const WaitBody = Type.Object({ deviceId: Type.Optional(DeviceId), timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 3_600_000 })) }, { additionalProperties: false });
export const Drained = Type.Object({ drained: Type.Literal(true), deviceId: Type.Union([Type.String(), Type.Null()]) });

export const ActionResult = Type.Object({
  action: Type.String(),
  target: Type.String(),
  outcome: Type.Union([Type.Literal('done'), Type.Literal('already')]),
  detail: Type.String(),
  auditId: Type.Integer(),
  seq: Type.Optional(Type.Integer({ description: 'resend: the seq the message got' })),
});

export const DeadLetterQuery = Type.Object(
  {
    device: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String()),
    open: Type.Optional(Type.Boolean()),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  },
  { additionalProperties: false },
);
export const LimitQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })) }, { additionalProperties: false });

/** The runtime's views, as the runtime returns them (their fields are described in src/api.ts). */
export const View = Type.Unknown({ description: 'as the runtime returns it: see RuntimeStatus, DeviceView, AgentView, SwitchRecord, Alarm, AuditEntry, DeadLetterView in src/api.ts' });
export const ViewList = Type.Array(View);

/** The error answers a route may give, by status (each the one error shape). */
export const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, ErrorBody]));
