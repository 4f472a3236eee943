/** The names baton gives its queues, exchanges and connections under a namespace: one place, shared by the runtime, the agents and the tools. */

export function topology(namespace: string) {
  return {
    agentQueue: (agentId: string) => `${namespace}.agent.${agentId}`,
    heartbeats: `${namespace}.heartbeats`,
    receipts: `${namespace}.receipts`,
    control: `${namespace}.control`,
  };
}

/** The connection name of an agent: what the runtime closes (management API) to fence it. */
export const agentConnectionName = (namespace: string, agentId: string) => `baton agent ${namespace} ${agentId}`;
