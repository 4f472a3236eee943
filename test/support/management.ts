// The RabbitMQ management API (enabled by .ci/run): close connections to simulate network faults.
import { request } from 'undici';

const API = 'http://127.0.0.1:15672/api';
const auth = { authorization: 'Basic ' + Buffer.from('guest:guest').toString('base64') };

/** Closes every connection whose client-given name is `connectionName`; returns how many. */
export async function closeConnections(connectionName: string): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const res = await request(`${API}/connections?columns=name,client_properties`, { headers: auth });
    const list = (await res.body.json()) as Array<{ name: string; client_properties?: { connection_name?: string } }>;
    const mine = list.filter((c) => c.client_properties?.connection_name === connectionName);
    if (mine.length > 0) {
      for (const c of mine) {
        const del = await request(`${API}/connections/${encodeURIComponent(c.name)}`, { method: 'DELETE', headers: { ...auth, 'x-reason': 'baton test' } });
        await del.body.dump();
      }
      return mine.length;
    }
    // the management API lists a new connection after its stats interval
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no connection named ${connectionName} appeared in the management API`);
}
