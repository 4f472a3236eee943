/** What counts as loopback: a bound address, and a request's Host naming a loopback server (against DNS rebinding). */
import { BlockList, isIP } from 'node:net';

const loopbackNets = new BlockList();
loopbackNets.addSubnet('127.0.0.0', 8, 'ipv4');
loopbackNets.addAddress('::1', 'ipv6'); // and ::ffff:127.x.y.z, which BlockList checks against the IPv4 rule

/** `localhost`, or an IP address literal in 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104; never a name that merely starts like one. */
export function isLoopback(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && loopbackNets.check(host, family === 6 ? 'ipv6' : 'ipv4');
}

/** Whether a request's Host names this loopback server: `localhost` or a loopback address, with its port. */
export function loopbackHost(header: string | undefined, port: number): boolean {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d+)$/.exec(header ?? '');
  return m !== null && Number(m[3]) === port && isLoopback((m[1] ?? m[2])!);
}

