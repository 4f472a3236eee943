// Secrets in URLs and around the fencing close: what redactUrl hides, a bad escape in managementUrl
// as a config error naming the option, and a failed forced close of the old agent that is logged.
import { describe, expect, it } from 'vitest';
import { createActor, toPromise } from 'xstate';
import type { Assignment } from '../../machines/coordinator.machine.ts';
import type { AgentRegistry } from '../../src/runtime/agent-registry.ts';
import { resolveRuntimeConfig } from '../../src/config.ts';
import { BatonError, isBatonError, redactUrl } from '../../src/errors.ts';
import type { LeaseGranter } from '../../src/runtime/lease-granter.ts';
import { createManagementApi } from '../../src/adapters/amqp/management-api.ts';
import type { ManagementApi } from '../../src/ports.ts';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { systemClock } from '../../src/clock.ts';
import { switchSteps } from '../../src/runtime/switch-steps.ts';
import { captureLogs } from '../support/log-capture.ts';

describe('redactUrl', () => {
  it.each([
    // [url, secrets that must not show, what must still show]
    ['amqp://guest:hunter2@h:5672/vh', ['hunter2'], ['amqp://guest:***@h:5672/vh']],
    ['https://ghp_T0KEN@git.example/x', ['ghp_T0KEN'], ['https://***@git.example/x']],
    ['http://admin%3As3cret@h:15672', ['s3cret', 'admin'], ['h:15672']],
    ['amqp://u:p@h/?heartbeat=5&password=topsecret&auth_mechanism=PLAIN', ['topsecret', 'PLAIN'], ['heartbeat=5', 'password=***']],
    ['postgresql://app:pw@h/db?sslpassword=k3y&application_name=baton', ['pw@', 'k3y'], ['application_name=baton', 'sslpassword=***']],
    ['http://h/x?access_token=AAA&api_key=BBB&apiKey=CCC&pwd=DDD&pass=EEE&secret=FFF&credential=GGG&X-Amz-Signature=HHH&session=III&page=2', ['AAA', 'BBB', 'CCC', 'DDD', 'EEE', 'FFF', 'GGG', 'HHH', 'III'], ['page=2']],
    ['http://h/x#token=JJJ', ['JJJ'], ['http://h/x']],
  ])('%s', (url, hidden, shown) => {
    const safe = redactUrl(url);
    for (const s of hidden) expect(safe).not.toContain(s);
    for (const s of shown) expect(safe).toContain(s);
  });

  it('shows nothing of a URL it cannot parse', () => {
    expect(redactUrl('amqp://u:p@[bad')).toBe('<unparseable url>');
  });
});

describe('a bad percent-escape in managementUrl', () => {
  const bad = 'http://guest:50%off@127.0.0.1:15672';

  it('is refused by the runtime config, naming the option and not the value', () => {
    const err = (() => {
      try {
        resolveRuntimeConfig({ devices: ['fw1'], managementUrl: bad });
      } catch (e) {
        return e;
      }
    })();
    expect(isBatonError(err, 'invalid-config')).toBe(true);
    expect((err as BatonError).message).toMatch(/option "managementUrl" must be a URL whose user name and password are valid percent-encoding/);
    expect((err as BatonError).message).not.toContain('50%off');
  });

  it('is an invalid-config BatonError from the management API client too, not a URIError', () => {
    const err = (() => {
      try {
        createManagementApi(bad);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(BatonError);
    expect((err as BatonError).code).toBe('invalid-config');
    expect((err as BatonError).message).toMatch(/option "managementUrl"/);
    expect((err as BatonError).message).not.toContain('50%off');
  });
});

describe('fencing the old agent', () => {
  it('logs a failed forced close of its connection (with the reason), and the switch goes on', async () => {
    const logs = captureLogs();
    const rabbit = new MemoryRabbit('t');
    const conn = rabbit.connect();
    await conn.start();
    const store = createMemoryStore({ now: () => Date.now() });
    const management: ManagementApi = {
      closeConnections: () => Promise.reject(new BatonError('broker-unavailable', 'RabbitMQ management API at http://guest:***@127.0.0.1:15672 is not reachable (connect ECONNREFUSED)')),
      shovel: () => Promise.reject(new Error('not used')),
    };
    const steps = switchSteps({
      store: () => store,
      broker: conn,
      registry: { healthy: () => [] } as unknown as AgentRegistry,
      granter: { switchingFrom: () => {} } as unknown as LeaseGranter,
      management,
      clock: systemClock,
      logger: logs.logger,
      namespace: 't',
      term: () => ({ holder: 'r1', epoch: 1 }),
    });
    const assignment = { agentId: 'a2', previousAgent: 'a1', epoch: 2 } as Assignment;
    await expect(toPromise(createActor(steps.fenceAgent, { input: { assignment } }).start())).resolves.toBeUndefined();
    const warned = logs.records().find((r) => r.agentId === 'a1' && String(r.err).includes('ECONNREFUSED'));
    expect(warned, logs.text()).toBeDefined();
    expect(warned!.level).toBe(40);
    expect(String(warned!.msg)).toMatch(/could not close the old agent's broker connection/);
  });
});
