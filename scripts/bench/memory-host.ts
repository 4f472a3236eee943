// The host process of the memory benchmark: dispatches N messages (at most 1,000 in flight) through
// baton's runtime, or publishes them with plain amqplib for the baseline, and samples its own RSS.
// Prints one JSON line: { samples: [{ at: messages, rssMb, heapMb }] }.
// Usage: node --import tsx scripts/bench/memory-host.ts '{"mode":"baton"|"plain",...}'
import amqp from 'amqplib';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { plainMessage } from './support.ts';

interface Options {
  mode: 'baton' | 'plain';
  messages: number;
  devices: string[];
  amqpUrl: string;
  databaseUrl: string;
  namespace: string;
  /** plain mode: the queue the baseline consumer reads */
  queue: string;
}

const o = JSON.parse(process.argv[2]!) as Options;
const WINDOW = 1000;
const every = Math.max(1, Math.floor(o.messages / 20));
const samples: Array<{ at: number; rssMb: number; heapMb: number }> = [];
const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;
const sample = (at: number) => {
  const m = process.memoryUsage();
  samples.push({ at, rssMb: mb(m.rss), heapMb: mb(m.heapUsed) });
};

/** Runs `send(i)` for every message with at most WINDOW in flight, sampling RSS as it goes. */
async function pump(send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < o.messages) {
      const i = next++;
      await send(i);
      if (i % every === 0) sample(i);
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
}

const message = (i: number) => ({ deviceId: o.devices[i % o.devices.length]!, method: 'PUT' as const, path: `/policies/p${i % 1000}`, body: { i } });

if (o.mode === 'baton') {
  const runtime = createRuntime({ devices: o.devices, amqpUrl: o.amqpUrl, databaseUrl: o.databaseUrl, namespace: o.namespace });
  await runtime.start();
  await runtime.ready();
  sample(0);
  const last = new Map<string, number>();
  await pump(async (i) => {
    const d = await runtime.dispatch(message(i));
    last.set(d.deviceId, Math.max(last.get(d.deviceId) ?? 0, d.seq));
  });
  await Promise.all([...last].map(([deviceId, seq]) => runtime.applied({ deviceId, seq }, { timeoutMs: 600_000 })));
  sample(o.messages);
  await runtime.stop();
} else {
  const conn = await amqp.connect(o.amqpUrl);
  const ch = await conn.createConfirmChannel();
  sample(0);
  await pump((i) => new Promise((resolve, reject) => ch.sendToQueue(o.queue, plainMessage(i % o.devices.length, i), { persistent: true }, (err) => (err ? reject(err) : resolve(undefined)))));
  sample(o.messages);
  await conn.close();
}
process.stdout.write(JSON.stringify({ samples }) + '\n');
