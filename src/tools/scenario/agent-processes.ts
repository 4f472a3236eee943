/** The agents of a scenario, each a `baton agent` process with its own credential; they live until `killAll`. */
import { spawnAgent, type ChildHandle } from '../processes.ts';
import type { RunPlace } from './setup.ts';

export class AgentProcesses {
  private readonly children = new Map<string, ChildHandle>();
  constructor(
    private readonly place: RunPlace,
    private readonly devicesFile: string,
    /** extra `baton agent` flags (`--on-permanent`: the scenario's agentOptions; the poison load skips what a device refuses for good) */
    private readonly flags: string[],
  ) {}

  start(id: string): ChildHandle {
    const { amqpUrl, namespace, keyOf } = this.place;
    const child = spawnAgent({ id, key: keyOf(id), devicesFile: this.devicesFile, amqpUrl, namespace, extra: this.flags, logLevel: 'error' });
    this.children.set(id, child);
    return child;
  }

  get(id: string): ChildHandle | undefined {
    return this.children.get(id);
  }

  all(): ChildHandle[] {
    return [...this.children.values()];
  }

  ids(): string[] {
    return [...this.children.keys()];
  }

  /** Kills every agent (a stopped one is continued first, so it can die) and waits for them to exit. */
  async killAll(): Promise<void> {
    for (const a of this.children.values()) {
      a.kill('SIGCONT');
      a.kill('SIGKILL');
      await a.exited;
    }
  }
}
