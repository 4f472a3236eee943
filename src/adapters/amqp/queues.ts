/** The agent queues as the admin channel sees them: declared with the configured type, and counted. */
import type { Channel } from 'amqplib';
import { BatonError } from '../../errors.ts';
import type { Broker, QueueInfo } from '../../ports.ts';
import type { topology } from '../../topology.ts';

export function createQueueAdmin(o: { names: ReturnType<typeof topology>; queueType: 'classic' | 'quorum'; adminChannel: () => Promise<Channel> }): Pick<Broker, 'assertAgentQueue' | 'queueInfo'> {
  return {
    async assertAgentQueue(agentId) {
      const name = o.names.agentQueue(agentId);
      const ch = await o.adminChannel();
      try {
        await ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': o.queueType } });
      } catch (err) {
        throw new BatonError(
          'broker-rejected',
          `cannot declare queue ${name} as ${o.queueType} (${(err as Error).message}); ` +
            'it probably exists with another type: delete it or set queueType to match',
          { queue: name },
        );
      }
      return name;
    },

    async queueInfo(queue): Promise<QueueInfo | null> {
      const ch = await o.adminChannel();
      try {
        const r = await ch.checkQueue(queue);
        return { messages: r.messageCount, consumers: r.consumerCount };
      } catch (err) {
        if (/404|NOT_FOUND/.test((err as Error).message)) return null;
        throw err;
      }
    },
  };
}
