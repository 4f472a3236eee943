// The DeviceClient contract over loopback HTTP (undici + the simulator) and in memory (the device model).
import { DeviceModel } from '../../src/devices/model.ts';
import { startDeviceSimulator } from '../../src/devices/simulator.ts';
import { createHttpDeviceClient } from '../../src/adapters/http-device-client.ts';
import { createMemoryDeviceClient } from '../../src/adapters/memory/device.ts';
import { deviceClientContract } from '../support/device-client-contract.ts';

deviceClientContract('HTTP (undici + simulator)', async () => {
  const sim = await startDeviceSimulator();
  return {
    client: createHttpDeviceClient({ timeoutMs: 1000 }),
    device: { id: 'd', url: sim.url },
    setErrorRate: (rate, status = 503) => sim.setFaults({ errorRate: rate, errorStatus: status }),
    dispose: () => sim.close(),
  };
});

deviceClientContract('in memory (device model)', async () => {
  const model = new DeviceModel();
  return {
    client: createMemoryDeviceClient(new Map([['d', model]])),
    device: { id: 'd', url: 'http://d.memory' },
    setErrorRate: (rate, status = 503) => ((model.errorRate = rate), (model.errorStatus = status)),
    dispose: async () => {},
  };
});
