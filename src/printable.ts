/** Strings from outside (agent ids, hosts, database rows) made safe to print on a terminal. */

/** DEL, C1 controls (U+009B is a CSI on its own), line and paragraph separators, bidirectional marks and overrides. */
const BEYOND_C0 = '\\u007f-\\u009f\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069';
const UNPRINTABLE = new RegExp(`[\\u0000-\\u001f${BEYOND_C0}]`, 'g');
const UNPRINTABLE_IN_JSON = new RegExp(`[${BEYOND_C0}]`, 'g');
const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * `s` with every character that could move the cursor, recolour, retitle or reorder a terminal
 * (C0 controls and the above) written as `\uXXXX`; nothing else changes.
 */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, escape);
}

/**
 * JSON text from `JSON.stringify` (which writes C0 controls in strings as escapes already, and
 * uses newlines between tokens) with the others escaped too: still the same JSON, since they can
 * only occur inside its strings, where `\uXXXX` means the same.
 */
export function printableJson(json: string): string {
  return json.replace(UNPRINTABLE_IN_JSON, escape);
}
