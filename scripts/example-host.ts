// A host that embeds baton: start the runtime, wait for an agent, dispatch a policy and its rule.
import { createRuntime, isBatonError } from 'baton';

// services: the defaults, or BATON_AMQP_URL / BATON_DATABASE_URL; the deployment secret: BATON_SECRET
const runtime = createRuntime({ devices: ['fw1'] });
await runtime.start();
try {
  const agent = await runtime.ready({ timeoutMs: 15_000 });
  console.log(`active agent: ${agent.agentId} (epoch ${agent.epoch})`);

  const policy = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/web', body: { name: 'web' } });
  const rule = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/web/rules/https', body: { port: 443, action: 'allow' } });
  console.log(`durable: policy seq ${policy.seq}, rule seq ${rule.seq}`);
  await runtime.applied(rule, { timeoutMs: 15_000 }); // the device has both (a rule is applied after its policy)
  console.log('applied on fw1');

  await runtime.dispatch({ deviceId: 'fw9', method: 'PUT', path: '/policies/x' }).catch((err) => {
    if (!isBatonError(err, 'invalid-message')) throw err;
    console.log(`refused: ${err.message}`);
  });
} finally {
  await runtime.stop(); // waits until every accepted message is confirmed by RabbitMQ
}
