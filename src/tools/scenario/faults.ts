/**
 * What each step of a scenario's timeline does: kill, stop, resume or start agents and runtimes,
 * fault devices, restart services, or have the leading runtime carry out an operator action (a
 * refused action fails the step, and so the run, with the runtime's message).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BatonError } from '../../errors.ts';
import type { DeviceSimulator } from '../../devices/simulator.ts';
import type { AgentProcesses } from './agent-processes.ts';
import type { Recovery } from './recovery.ts';
import type { RuntimeFleet } from './runtime-fleet.ts';
import type { OperatorAction, Step } from './schema.ts';
import type { Timeline } from './timeline.ts';

const run = promisify(execFile);

export type Act = (step: Step) => Promise<void>;

/** Has the leader carry out the step's action; notes its outcome, or throws `scenario-step-failed` with the runtime's refusal. */
async function operate(runtimes: RuntimeFleet, timeline: Timeline, step: Step & OperatorAction): Promise<void> {
  const a = await runtimes.act(step);
  if (!a.ok) throw new BatonError('scenario-step-failed', `step "${step.label}" failed: the runtime refused it (${a.code}): ${a.message}; the run stops and everything it started is removed`, { step: step.label, code: a.code });
  timeline.note('fault', `${step.label}: ${a.outcome}${a.detail ? ` (${a.detail})` : ''}`);
}

export function faultActor(c: { timeline: Timeline; agents: AgentProcesses; runtimes: RuntimeFleet; sims: DeviceSimulator[]; recovery: Recovery }): Act {
  const { agents, runtimes, recovery } = c;
  let stoppedAgent: string | null = null;
  const pick = (id: string) => (id === 'active' ? runtimes.activeAgent! : id === 'stopped' ? stoppedAgent! : id);
  return async (step) => {
    c.timeline.note('fault', step.label);
    switch (step.do) {
      case 'kill-agent':
        recovery.faultStruck();
        agents.get(pick(step.agent))?.kill('SIGKILL');
        break;
      case 'stop-agent':
        recovery.faultStruck();
        stoppedAgent = pick(step.agent);
        agents.get(stoppedAgent)?.kill('SIGSTOP');
        break;
      case 'resume-agent':
        agents.get(pick(step.agent))?.kill('SIGCONT');
        break;
      case 'start-agent':
        agents.start(step.agent);
        break;
      case 'kill-all-agents':
        recovery.faultStruck();
        for (const a of agents.all()) a.kill('SIGKILL');
        break;
      case 'kill-runtime': {
        const r = step.runtime === 'leader' ? runtimes.leader() : runtimes.get(step.runtime);
        if (r) runtimes.kill(r, step.phase);
        break;
      }
      case 'start-runtime':
        await runtimes.start(step.runtime);
        break;
      case 'device-fault':
        c.sims[Number(step.device.slice(2)) - 1]!.setFaults(step.faults);
        break;
      case 'restart-broker':
        await run('rabbitmqctl', ['stop_app']);
        await run('rabbitmqctl', ['start_app']);
        break;
      case 'restart-database':
        await run('bash', ['-c', 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -n1) main restart -m immediate']);
        break;
      case 'unblock':
      case 'pause':
      case 'resume':
      case 'handover':
        await operate(runtimes, c.timeline, step);
        break;
    }
  };
}
