/**
 * The RabbitMQ permissions each role needs under a namespace, and nothing more (README "Trust and
 * security"): what the runtime and an agent declare, publish to and consume, as `rabbitmqctl
 * set_permissions` regexes. Exclusive server-named queues (`amq.gen-…`, one per event subscription)
 * can be used only by the connection that declared them.
 */
import { topology } from '../../topology.ts';

export interface Permissions {
  configure: string;
  write: string;
  read: string;
}

/** a name as a regex matching only itself (ids hold letters, digits, ".", "_" and "-": only the dot needs escaping) */
const quote = (name: string) => name.replace(/\./g, '\\.');
const anyOf = (...names: string[]) => `^(${names.join('|')})$`;
const GENERATED = 'amq\\.gen-.*';
/** the default exchange: how a message is published straight to a queue */
const DEFAULT_EXCHANGE = 'amq\\.default';

/** The runtime: every resource of the namespace (it declares, moves and reads them all). */
export function runtimePermissions(namespace: string): Permissions {
  const all = `${quote(namespace)}\\..*`;
  return { configure: anyOf(all, GENERATED), write: anyOf(all, GENERATED, DEFAULT_EXCHANGE), read: anyOf(all, GENERATED) };
}

/**
 * One agent: it declares its queue and the shared exchanges and receipts queue (so that it can start
 * before any runtime), publishes heartbeats and receipts (the latter through the default exchange),
 * consumes its own queue and reads its grants through an exclusive queue bound to the control exchange.
 */
export function agentPermissions(namespace: string, agentId: string): Permissions {
  const t = topology(namespace);
  return {
    configure: anyOf(quote(t.heartbeats), quote(t.control), quote(t.receipts), quote(t.agentQueue(agentId)), GENERATED),
    write: anyOf(quote(t.heartbeats), DEFAULT_EXCHANGE, GENERATED),
    read: anyOf(quote(t.control), quote(t.agentQueue(agentId)), GENERATED),
  };
}

/** The shell command that sets `p` for `user` on `vhost`. */
export function setPermissionsCommand(user: string, p: Permissions, vhost = '/'): string {
  return `rabbitmqctl set_permissions -p ${vhost} ${user} '${p.configure}' '${p.write}' '${p.read}'`;
}
