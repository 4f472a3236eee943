/** The DeviceClient port in memory: devices as DeviceModels, answers classified like HTTP ones. Passes the same contract suite. */
import { classify } from '../../device-answers.ts';
import type { DeviceModel } from '../../devices/model.ts';
import type { DeviceClient } from '../../ports.ts';

export function createMemoryDeviceClient(models: ReadonlyMap<string, DeviceModel>): DeviceClient {
  return {
    async send(device, m, epoch) {
      const model = models.get(device.id);
      if (!model) return { kind: 'transient', status: null, reason: `device ${device.id} unreachable: no such device` };
      const a = model.write(m.method, m.path, m.seq, epoch, m.body);
      return classify(a.status, a.headers ?? {}, JSON.stringify(a.body));
    },
    async watermark(device) {
      if (device.reportsWatermark === false) return null;
      return models.get(device.id)?.watermark ?? null;
    },
    async close() {},
  };
}
