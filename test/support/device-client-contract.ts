// The DeviceClient port's contract: the undici client against the HTTP simulator and the in-memory
// client against the device model must answer alike.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceClient, DeviceConfig, WireMessage } from '../../src/ports.ts';

export interface DeviceUnderTest {
  client: DeviceClient;
  device: DeviceConfig;
  setErrorRate(rate: number, status?: number): void;
  dispose(): Promise<void>;
}

const m = (seq: number, path: string, method: WireMessage['method'] = 'PUT'): WireMessage => ({ deviceId: 'd', seq, method, path, body: { seq } });

export function deviceClientContract(name: string, open: () => Promise<DeviceUnderTest>) {
  describe(`DeviceClient contract: ${name}`, () => {
    let t: DeviceUnderTest;
    beforeEach(async () => {
      t = await open();
    });
    afterEach(async () => {
      await t.client.close();
      await t.dispose();
    });

    it('applies a parent then its child and reports the watermark', async () => {
      expect(await t.client.send(t.device, m(1, '/policies/p1'), 1)).toEqual({ kind: 'applied', status: 200 });
      expect(await t.client.send(t.device, m(2, '/policies/p1/rules/r1'), 1)).toEqual({ kind: 'applied', status: 200 });
      expect(await t.client.watermark(t.device)).toBe(2);
    });

    it('a child without its parent is permanent (422), with the device answer', async () => {
      const out = await t.client.send(t.device, m(1, '/policies/p9/rules/r1'), 1);
      expect(out).toMatchObject({ kind: 'permanent', status: 422 });
      expect(out.kind === 'permanent' && out.response).toMatch(/parent \/policies\/p9 does not exist/);
    });

    it('a write from a lower epoch than seen is fenced', async () => {
      await t.client.send(t.device, m(1, '/policies/p1'), 3);
      expect(await t.client.send(t.device, m(2, '/policies/p2'), 2)).toMatchObject({ kind: 'fenced', status: 409 });
    });

    it('an injected 503 is transient; POST on an existing resource and a bad path are permanent', async () => {
      t.setErrorRate(1, 503);
      expect(await t.client.send(t.device, m(1, '/policies/p1'), 1)).toMatchObject({ kind: 'transient', status: 503 });
      t.setErrorRate(0);
      await t.client.send(t.device, m(1, '/policies/p1'), 1);
      expect(await t.client.send(t.device, m(2, '/policies/p1', 'POST'), 1)).toMatchObject({ kind: 'permanent', status: 409 });
      expect(await t.client.send(t.device, m(3, '/policies'), 1)).toMatchObject({ kind: 'permanent', status: 404 });
    });

    it('DELETE refuses a resource with children, then removes it once they are gone', async () => {
      await t.client.send(t.device, m(1, '/policies/p1'), 1);
      await t.client.send(t.device, m(2, '/policies/p1/rules/r1'), 1);
      expect(await t.client.send(t.device, { ...m(3, '/policies/p1', 'DELETE'), body: null }, 1)).toMatchObject({ kind: 'permanent', status: 409 });
      expect(await t.client.send(t.device, { ...m(4, '/policies/p1/rules/r1', 'DELETE'), body: null }, 1)).toMatchObject({ kind: 'applied' });
      expect(await t.client.send(t.device, { ...m(5, '/policies/p1', 'DELETE'), body: null }, 1)).toMatchObject({ kind: 'applied' });
    });
  });
}
