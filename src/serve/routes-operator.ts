/**
 * API v1's views (the runtime's status, devices, agents, switches, alarms, audit, dead letters) and its
 * operator actions (pause, resume, unblock, dead letters resent or dropped, handover, wait until
 * drained): the Runtime API (src/api.ts) over HTTP. Each action is recorded in the audit with who asked
 * (`req.by`: `token:<label>`); a standby's `not-leader` refusal becomes a redirect (./leader-redirect.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Runtime } from '../api.ts';
import { BatonError } from '../errors.ts';
import * as S from './schemas.ts';

export type OperatorRuntime = Pick<
  Runtime,
  'status' | 'devices' | 'alarms' | 'audit' | 'deadLetters' | 'deadLetter' | 'pause' | 'resume' | 'unblock' | 'resendDeadLetter' | 'dropDeadLetter' | 'handover' | 'drained'
>;

const view = (summary: string) => ({ schema: { summary, tags: ['views'], response: { 200: S.View, ...S.errors(401) } } });
const viewList = <E extends object>(summary: string, extra: E = {} as E) => ({ schema: { summary, tags: ['views'], response: { 200: S.ViewList, ...S.errors(400, 401) }, ...extra } });
const action = <E extends object>(summary: string, extra: E) => ({ schema: { summary, tags: ['actions'], response: { 200: S.ActionResult, ...S.errors(400, 401, 404, 409, 503) }, ...extra } });

export const viewRoutes: FastifyPluginAsyncTypebox<{ runtime: OperatorRuntime }> = async (app, { runtime }) => {
  app.get('/v1/status', view("the runtime's status (runtime.status())"), () => runtime.status());
  app.get('/v1/devices', viewList('each configured device: its line, seqs, lag and last failure'), () => runtime.devices());
  app.get('/v1/agents', viewList('the agents as the leading runtime sees them'), async () => (await runtime.status()).agents);
  app.get('/v1/switches', viewList('the switches of the active agent, newest first'), async () => (await runtime.status()).switches);
  app.get('/v1/alarms', viewList('the alarms open now, the oldest first'), () => runtime.alarms());
  app.get('/v1/audit', viewList('the operator actions, newest first', { querystring: S.LimitQuery }), (req) =>
    runtime.audit(req.query.limit !== undefined ? { limit: req.query.limit } : {}),
  );
  app.get('/v1/dead-letters', viewList('stored dead letters, newest first', { querystring: S.DeadLetterQuery }), (req) => {
    const q = req.query;
    return runtime.deadLetters({
      ...(q.device !== undefined ? { deviceId: q.device } : {}),
      ...(q.reason !== undefined ? { reason: q.reason } : {}),
      ...(q.open !== undefined ? { open: q.open } : {}),
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
    });
  });
  app.get('/v1/dead-letters/:id', { schema: { summary: 'one dead letter', tags: ['views'], params: S.DeadLetterParams, response: { 200: S.View, ...S.errors(400, 401, 404) } } }, async (req) => {
    const dl = await runtime.deadLetter(req.params.id);
    if (!dl) throw new BatonError('unknown-dead-letter', `there is no dead letter ${req.params.id} (GET /v1/dead-letters lists them)`, { id: req.params.id });
    return dl;
  });
};

export const actionRoutes: FastifyPluginAsyncTypebox<{ runtime: OperatorRuntime }> = async (app, { runtime }) => {
  const device = { params: S.DeviceParams, body: S.Empty };
  app.post('/v1/devices/:id/pause', action("pause a device: its messages are kept, none is sent", device), (req) => runtime.pause(req.params.id, { by: req.by }));
  app.post('/v1/devices/:id/resume', action('resume a paused device', device), (req) => runtime.resume(req.params.id, { by: req.by }));
  app.post('/v1/devices/:id/unblock', action('free a blocked line: retry the refused message, or skip it', { params: S.DeviceParams, body: S.UnblockBody }), (req) =>
    runtime.unblock(req.params.id, { action: req.body.action, by: req.by }),
  );
  app.post('/v1/dead-letters/:id/resend', action("dispatch a dead letter's message again, with a new seq", { params: S.DeadLetterParams, body: S.Empty }), (req) =>
    runtime.resendDeadLetter(req.params.id, { by: req.by }),
  );
  app.post('/v1/dead-letters/:id/drop', action('mark a dead letter dropped, with the reason', { params: S.DeadLetterParams, body: S.DropBody }), (req) =>
    runtime.dropDeadLetter(req.params.id, { reason: req.body.reason, by: req.by }),
  );
  app.post('/v1/handover', action('planned handover of the stream to another agent', { body: S.HandoverBody }), (req) =>
    runtime.handover({ ...(req.body.to !== undefined ? { to: req.body.to } : {}), by: req.by }),
  );
  app.post('/v1/wait', { schema: { summary: 'answers once everything accepted so far (for one device, or all) is applied or dead-lettered', tags: ['actions'], body: S.WaitBody, response: { 200: S.Drained, ...S.errors(400, 401, 504) } } }, async (req) => {
    const { deviceId, timeoutMs } = req.body;
    await runtime.drained({ ...(deviceId !== undefined ? { deviceId } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
    return { drained: true as const, deviceId: deviceId ?? null };
  });
};
