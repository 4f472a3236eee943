/** What an id (of an agent, a device, a namespace) may be: it names queues, metrics labels and log fields. */
const idPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** An id as agents, devices and namespaces are configured with: a letter or digit, then letters, digits, ".", "_" or "-", at most 64 in all. */
export const isId = (v: unknown): v is string => typeof v === 'string' && idPattern.test(v);
