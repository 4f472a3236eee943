/** The ManagementApi port over RabbitMQ's management HTTP API: close a fenced agent's connections, run dynamic shovels. */
import { request } from 'undici';
import { BatonError, redactUrl } from '../../errors.ts';
import type { ManagementApi } from '../../ports.ts';

/** The URL without its credentials, and the Basic authorization they make; a config error naming the option when they cannot be read. */
function parse(managementUrl: string): { u: URL; auth: string } {
  try {
    const u = new URL(managementUrl);
    return { u, auth: 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64') };
  } catch (err) {
    const why = err instanceof URIError ? 'its user name or password is not valid percent-encoding (write "%" as "%25")' : 'it is not a URL';
    throw new BatonError('invalid-config', `option "managementUrl" cannot be used: ${why}; no connection is closed and no queue moved through the management API`, { option: 'managementUrl' });
  }
}

export function createManagementApi(managementUrl: string, vhost = '/'): ManagementApi {
  const { u, auth } = parse(managementUrl);
  u.username = '';
  u.password = '';
  const base = u.toString().replace(/\/$/, '') + '/api';
  const v = encodeURIComponent(vhost);
  const safe = redactUrl(managementUrl);

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    let res;
    try {
      res = await request(base + path, {
        method: method as 'GET',
        headers: { authorization: auth, 'content-type': 'application/json', 'x-reason': 'baton fencing' },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
    } catch (err) {
      throw new BatonError('broker-unavailable', `RabbitMQ management API at ${safe} is not reachable (${(err as Error).message})`, { url: safe });
    }
    const text = await res.body.text();
    if (res.statusCode >= 400 && res.statusCode !== 404) {
      throw new BatonError('broker-rejected', `RabbitMQ management API ${method} ${path} answered ${res.statusCode}: ${text.slice(0, 200)}`, { url: safe });
    }
    return { status: res.statusCode, json: text ? JSON.parse(text) : null };
  }

  return {
    async closeConnections(connectionName) {
      const { json } = await call('GET', '/connections?columns=name,client_properties');
      const mine = ((json as Array<{ name: string; client_properties?: { connection_name?: string } }>) ?? []).filter(
        (c) => c.client_properties?.connection_name === connectionName,
      );
      for (const c of mine) await call('DELETE', `/connections/${encodeURIComponent(c.name)}`);
      return mine.length;
    },

    async shovel(name, from, to, { pollMs, sleep }) {
      const path = `/parameters/shovel/${v}/${encodeURIComponent(name)}`;
      await call('PUT', path, {
        value: {
          'src-protocol': 'amqp091',
          'src-uri': 'amqp://',
          'src-queue': from,
          'dest-protocol': 'amqp091',
          'dest-uri': 'amqp://',
          'dest-queue': to,
          'src-delete-after': 'queue-length',
          'ack-mode': 'on-confirm',
        },
      });
      // with src-delete-after the shovel removes itself once it moved what the queue held
      for (;;) {
        const { status } = await call('GET', path);
        if (status === 404) return;
        await sleep(pollMs);
      }
    },
  };
}
