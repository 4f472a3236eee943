/** Message shapes for demos, tests and benchmarks: parents then children, so order matters at the device. */
import type { ConfigMessage } from '../wire.ts';

/**
 * The i-th message (0-based) for a device: every tenth is a policy, the others are rules inside
 * the latest policy. A rule applied before its policy is refused by the device (422).
 */
export function workloadMessage(deviceId: string, i: number): ConfigMessage {
  const policy = Math.floor(i / 10);
  if (i % 10 === 0) return { deviceId, method: 'PUT', path: `/policies/p${policy}`, body: { name: `policy ${policy}` } };
  return { deviceId, method: 'PUT', path: `/policies/p${policy}/rules/r${i}`, body: { action: i % 2 ? 'allow' : 'deny', port: 1000 + (i % 5000) } };
}
