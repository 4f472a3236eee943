// The baseline of the failover benchmarks: a plain consumer of a quorum queue with single active
// consumer (RabbitMQ's own failover). It POSTs each message to the device, one at a time, then acks
// it; its writes carry its number as the epoch so the benchmark can tell the two consumers apart.
// SIGUSR2 is its planned stop (handover-planned's baseline): it cancels its consumer (RabbitMQ makes
// the other one active), finishes and acks the message it has, closes and exits.
// Usage: node --import tsx scripts/bench/sac-consumer.ts AMQP_URL QUEUE DEVICE_URL CONSUMER_NO HEARTBEAT_S
import amqp from 'amqplib';
import { Pool } from 'undici';

const [url, queue, deviceUrl, no, heartbeat] = process.argv.slice(2) as [string, string, string, string, string];
const withHeartbeat = new URL(url);
withHeartbeat.searchParams.set('heartbeat', heartbeat);
const conn = await amqp.connect(withHeartbeat.toString());
const ch = await conn.createChannel();
await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-single-active-consumer': true } });
await ch.prefetch(1);
const pool = new Pool(deviceUrl, { connections: 1 });
let inFlight: Promise<unknown> = Promise.resolve();
const { consumerTag } = await ch.consume(queue, (m) => {
  if (!m) return;
  const seq = Number(m.content.toString());
  inFlight = pool
    .request({ method: 'PUT', path: `/policies/p${seq}`, body: '{}', headers: { 'content-type': 'application/json', 'x-baton-seq': String(seq), 'x-baton-epoch': no } })
    .then((r) => r.body.dump())
    .then(() => ch.ack(m))
    .catch(() => {}); // after a SIGCONT the channel is gone: the broker already gave the message to the other consumer
});
process.once('SIGUSR2', () => {
  void ch
    .cancel(consumerTag)
    .then(() => inFlight)
    .then(() => conn.close())
    .finally(() => process.exit(0));
});
conn.on('error', () => {});
process.stdout.write('consuming\n');
