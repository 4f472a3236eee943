/** What a device's answer means for delivery: applied, transient (retry), permanent (dead letter) or fenced (a newer epoch wrote). The HTTP client and the in-memory one classify alike. */
import type { DeviceOutcome } from './ports.ts';

/** Classifies an HTTP answer (status, headers, body). */
export function classify(status: number, headers: Record<string, string | string[] | undefined>, response: string): DeviceOutcome {
  if (status >= 200 && status < 300) return { kind: 'applied', status };
  if (status === 409 && headers['x-baton-fenced'] !== undefined) {
    return { kind: 'fenced', status, reason: `device refused a stale epoch: ${response.slice(0, 200)}` };
  }
  if (status === 429 || status >= 500) return { kind: 'transient', status, reason: `device answered ${status}` };
  return { kind: 'permanent', status, reason: `device answered ${status}`, response };
}
