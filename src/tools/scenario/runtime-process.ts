/**
 * A runtime in a child process of its own, driven over the IPC channel by the scenario runner:
 * it dispatches what it is sent and carries out the operator actions it is sent (unblock, pause,
 * resume, handover), answers each with the outcome, forwards the runtime's events, and kills itself
 * (SIGKILL) when told to crash at a switch phase (through the runtime's onPhase hook).
 */
import { createRuntime } from '../../runtime/runtime.ts';
import type { ActionResult, Runtime, RuntimeEvents } from '../../api.ts';
import { cliLogger } from '../../logger.ts';
import type { ConfigMessage } from '../../wire.ts';
import type { OperatorAction } from './schema.ts';

export type ToRuntime = { type: 'dispatch'; id: number; message: ConfigMessage } | { type: 'action'; id: number; action: OperatorAction } | { type: 'crash-at'; phase: string } | { type: 'stop' };
export type FromRuntime =
  | { type: 'started'; inspectorUrl: string | null }
  | { type: 'result'; id: number; ok: true; deviceId: string; seq: number }
  | { type: 'result'; id: number; ok: false; code: string; message: string }
  | { type: 'action-result'; id: number; ok: true; outcome: ActionResult['outcome']; detail: string }
  | { type: 'action-result'; id: number; ok: false; code: string; message: string }
  | { type: 'event'; name: keyof RuntimeEvents; payload: unknown; at: number };

const FORWARD: Array<keyof RuntimeEvents> = ['agent.dead', 'agent.suspect', 'agent.alive', 'agent.registered', 'switch.started', 'switch.phase', 'switch.completed', 'leader.won', 'leader.lost', 'message.dead-lettered', 'coordinator.active', 'device.line'];

/** Who the audit table says asked for a scenario's actions. */
const BY = 'scenario';

/** Carries out an operator action; a refusal (thrown at once or rejected) comes back as a rejection. */
export async function operate(runtime: Pick<Runtime, 'unblock' | 'pause' | 'resume' | 'handover'>, a: OperatorAction): Promise<ActionResult> {
  switch (a.do) {
    case 'unblock':
      return runtime.unblock(a.device, { action: a.action, by: BY });
    case 'pause':
      return runtime.pause(a.device, { by: BY });
    case 'resume':
      return runtime.resume(a.device, { by: BY });
    case 'handover':
      return runtime.handover({ ...(a.to !== undefined ? { to: a.to } : {}), by: BY });
  }
}

/** Entry point of `baton _runtime` (internal). Its options come as JSON in BATON_SCENARIO_RUNTIME. */
export async function runtimeProcess(options: { devices: Array<{ id: string; fencesByEpoch: boolean }>; runtimeId: string; leaderTtl: number; managementUrl?: string; logLevel?: string; inspectPort?: number }): Promise<void> {
  const send = (m: FromRuntime) => process.send?.(m);
  let crashAt: string | null = null;
  const runtime = createRuntime({
    devices: options.devices,
    runtimeId: options.runtimeId,
    leaderTtl: options.leaderTtl,
    ...(options.managementUrl ? { managementUrl: options.managementUrl } : {}),
    ...(options.inspectPort !== undefined ? { inspector: { port: options.inspectPort } } : {}),
    logger: cliLogger(options.logLevel ?? 'warn', options.runtimeId),
    onPhase: (phase) => {
      if (phase === crashAt) process.kill(process.pid, 'SIGKILL');
    },
  });
  for (const name of FORWARD) runtime.on(name, (payload) => send({ type: 'event', name, payload, at: Date.now() }));
  process.on('message', (m: ToRuntime) => {
    if (m.type === 'crash-at') crashAt = m.phase;
    else if (m.type === 'stop') void runtime.stop().then(() => process.exit(0));
    else if (m.type === 'dispatch') {
      runtime.dispatch(m.message).then(
        (r) => send({ type: 'result', id: m.id, ok: true, ...r }),
        (err: Error & { code?: string }) => send({ type: 'result', id: m.id, ok: false, code: err.code ?? 'error', message: err.message }),
      );
    } else if (m.type === 'action') {
      operate(runtime, m.action).then(
        (r) => send({ type: 'action-result', id: m.id, ok: true, outcome: r.outcome, detail: r.detail }),
        (err: Error & { code?: string }) => send({ type: 'action-result', id: m.id, ok: false, code: err.code ?? 'error', message: err.message }),
      );
    }
  });
  process.on('disconnect', () => void runtime.stop().finally(() => process.exit(0)));
  await runtime.start();
  send({ type: 'started', inspectorUrl: (await runtime.status()).inspectorUrl });
}
