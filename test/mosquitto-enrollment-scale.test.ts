import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deviceTopic, transferDataTopic } from '../shared/topics.ts';
import { startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw, subscribeGrants } from './helpers/raw-device.ts';

const N = 200;
const AT_ONCE = 50;

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

/**
 * Issue 10, Mosquitto: per-device dynamic-security clients and roles rewrote the plugin's whole
 * config per change and the control plane crashed with 100 enrolling at once. With EdgeFleet's plugin
 * each enrollment is one O(1) line: 200 devices, 50 at once, all enroll and register, and topic
 * isolation holds for every one of them.
 */
describe(`Mosquitto: ${N} devices enrolling ${AT_ONCE} at once`, () => {
  let fleet: TestFleet;
  const pw = new Map<string, string>();
  const ids = Array.from({ length: N }, (_, i) => `scale-${i}`);

  before(async () => {
    fleet = await startTestFleet('mosquitto');
  });
  after(async () => fleet?.stop());

  test('all enroll and register; isolation holds for each', async () => {
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: N } })).body.token as string;
    const t0 = performance.now();
    await pool(ids, AT_ONCE, async (id) => {
      const r = await enrollRaw(fleet.cp.brokerUrl, token, id);
      assert.equal(r.response.ok, true, `${id}: ${JSON.stringify(r.response)}`);
      pw.set(id, r.password);
    });
    const enrolledS = (performance.now() - t0) / 1000;
    await pool(ids, AT_ONCE, async (id) => {
      const c = await connectRaw(fleet.cp.brokerUrl, { clientId: id, username: id, password: pw.get(id)! });
      const other = ids[(ids.indexOf(id) + 1) % N]!;
      const grants = await subscribeGrants(c, [deviceTopic(id, 'cmd'), deviceTopic(other, 'cmd'), 'edgefleet/v1/devices/+/cmd', transferDataTopic('not-granted')]);
      assert.deepEqual(grants.map(([, q]) => q), [1, 128, 128, 128], `${id} isolation`);
      await c.publishAsync(deviceTopic(id, 'birth'), birthPayload(id), { qos: 1 });
      await c.endAsync();
    });
    await waitFor(`${N} online`, async () => (fleet.cp.ctx.db.prepare("SELECT COUNT(*) AS n FROM devices WHERE status = 'online'").get() as { n: number }).n === N, 60_000);
    const totalS = (performance.now() - t0) / 1000;
    console.log(`# mosquitto: ${N} devices (${AT_ONCE} at once) enrolled in ${enrolledS.toFixed(1)} s, all registered in ${totalS.toFixed(1)} s`);
    // one token, N uses: every use spent exactly once, no row without a login
    const tok = (await fleet.api('/enrollment-tokens')).body.items[0];
    assert.equal(tok.uses, N);
    assert.equal(fleet.cp.ctx.broker.availability().ok, true);
  });
});
