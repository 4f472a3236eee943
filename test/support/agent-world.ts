// The ground every one-agent unit test stands on: a simulated clock, an in-memory RabbitMQ, the
// agent's gate (what it runs goes through it, held while the agent is "stopped"), the agent's
// connection through that gate, and the test's own connection playing the runtime, with the
// agent's queue declared. Each test adds its own device client, grants and listeners.
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';

export async function oneAgentGround(agentId = 'a1') {
  const world = new World(1);
  const rabbit = new MemoryRabbit('t');
  const gate = new Gate(agentId);
  const conn = rabbit.connect({ schedule: gate.run });
  const runtime = rabbit.connect();
  await runtime.start();
  const queue = await runtime.assertAgentQueue(agentId);
  return { world, rabbit, gate, conn, runtime, queue };
}
