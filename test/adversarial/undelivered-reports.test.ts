import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { after, before, describe, test } from 'node:test';
import { createStandardRooms, type StandardRooms } from '../../control-plane/compose.ts';
import { MAX_BENCHMARKS_PER_INSTALL, MAX_EVENTS_PER_INSTALL } from '../../control-plane/delivery/delivery-service.ts';
import { newMsgId, type ModelManifest } from '../../shared/messages.ts';
import { deviceTopic } from '../../shared/topics.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from '../helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw } from '../helpers/raw-device.ts';

/**
 * Issue 8 item 7: a device sent benchmark reports for a model it never received and the model report's median
 * speed-up went from 0.51 to 5,000,000; 526 install-state events with 1,000-character reasons were stored. Replayed on
 * both brokers from a real device login: reports for installs never offered are refused (counted), numbers out of a
 * plausible range are refused, history and benchmark rows per install are capped, the rollout id is the install's,
 * and a device has one vote in the model report.
 */
const lat = (p50: number) => ({ p50, p90: p50, p99: p50, mean: p50, min: p50, max: p50, count: 10 });
const result = (p50: number) => ({ runtime: 'onnxruntime-cpu', threads: 1, sessionCreateMs: 1, latencyMs: lat(p50), throughputPerSecond: 1000 / p50, throughputBatchSize: 1, peakRssBytes: 1 << 20, fileSizeBytes: 1000, accuracy: 0.9, agreement: null, integerKernelShare: null, topOps: [] });
const bench = (modelId: string, version: number, p50: number, baselineP50: number, rolloutId: string | null = null) =>
  JSON.stringify({ v: 1, msgId: newMsgId(), ts: Date.now(), kind: 'benchmark', rolloutId, model: { modelId, version }, result: result(p50), baseline: result(baselineP50) });
const state = (modelId: string, version: number, s: string, reason: string | null) =>
  JSON.stringify({ v: 1, msgId: newMsgId(), ts: Date.now(), kind: 'install-state', rolloutId: 'ro-claimed', model: { modelId, version }, state: s, progress: null, reason });

for (const kind of BROKER_KINDS) {
  describe(`reports for models never delivered, on the ${kind} broker`, () => {
    let fleet: TestFleet;
    let rooms: StandardRooms;
    const devices: Record<string, MqttClient> = {};

    const device = async (id: string, token: string): Promise<MqttClient> => {
      const { password } = await enrollRaw(fleet.cp.brokerUrl, token, id);
      const c = await connectRaw(fleet.cp.brokerUrl, { clientId: id, username: id, password });
      await c.publishAsync(deviceTopic(id, 'birth'), birthPayload(id, { cpu: { cores: 4, flags: ['avx512_vnni', 'avx2'] } }), { qos: 1 });
      await waitFor(`${id} registered`, () => fleet.cp.ctx.devices.get(id)?.profileId);
      devices[id] = c;
      return c;
    };
    const offer = (deviceId: string, modelId: string, version: number, rolloutId: string | null = null): void =>
      rooms.delivery.store.createInstall({ deviceId, modelId, version, deliveryId: `dlv-${deviceId}-${version}`, rolloutId, transferId: `t-${modelId}-${version}`, createdAt: Date.now() }, {} as ModelManifest);
    const count = (sql: string, ...args: unknown[]): number => (fleet.cp.ctx.db.prepare(sql).get(...args) as { n: number }).n;
    const refused = async (reason: string): Promise<number> => {
      const m = new RegExp(`edgefleet_reports_refused_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)`, 'g');
      return [...(await fleet.api('/metrics')).text.matchAll(m)].reduce((s, x) => s + Number(x[1]), 0);
    };

    before(async () => {
      fleet = await startTestFleet(kind, {}, (dataDir) => {
        rooms = createStandardRooms({ dataDir, ui: false });
        return rooms.extensions;
      });
      // delivery_transfers rows the offers point at (foreign key of delivery_offers is not needed for installs)
      const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 5 } })).body.token;
      await device('liar', token);
      await device('honest', token);
    });
    after(async () => {
      for (const c of Object.values(devices)) await c.endAsync();
      await fleet?.stop();
    });

    test('benchmark and install-state reports for a model never offered are refused and counted', async () => {
      const c = devices['liar']!;
      for (let i = 0; i < 20; i++) await c.publishAsync(deviceTopic('liar', 'report'), bench('never-delivered', 1, 0.001, 5), { qos: 1 });
      for (let i = 0; i < 300; i++) await c.publishAsync(deviceTopic('liar', 'report'), state('never-delivered', 1, i % 2 ? 'failed' : 'active', 'r'.repeat(500)), { qos: 1 });
      await waitFor('all refused', async () => (await refused('not-offered')) >= 320, 30_000);
      assert.equal(count("SELECT COUNT(*) AS n FROM delivery_benchmarks WHERE device_id = 'liar'"), 0);
      assert.equal(count("SELECT COUNT(*) AS n FROM delivery_install_events WHERE device_id = 'liar'"), 0);
      const rep = await fleet.api('/reports/models/never-delivered');
      assert.equal(rep.status, 404, rep.text);
    });

    test('an offered install: implausible numbers refused, history and benchmarks capped, rollout id from the install', async () => {
      offer('liar', 'offered', 1, null);
      const c = devices['liar']!;
      await c.publishAsync(deviceTopic('liar', 'report'), bench('offered', 1, 0.001, 5), { qos: 1 }); // 5,000x speed-up
      await waitFor('implausible refused', async () => (await refused('implausible-speedup')) >= 1, 10_000);
      for (let i = 0; i < MAX_EVENTS_PER_INSTALL + 150; i++) await c.publishAsync(deviceTopic('liar', 'report'), state('offered', 1, i % 2 ? 'verifying' : 'benchmarking', 'x'.repeat(500)), { qos: 1 });
      for (let i = 0; i < MAX_BENCHMARKS_PER_INSTALL + 5; i++) await c.publishAsync(deviceTopic('liar', 'report'), bench('offered', 1, 2, 4, 'ro-claimed'), { qos: 1 });
      await waitFor('caps reached', async () => (await refused('too-many-benchmarks')) >= 5 && (await refused('events-capped')) >= 1, 30_000);
      assert.equal(count("SELECT COUNT(*) AS n FROM delivery_install_events WHERE device_id = 'liar' AND model_id = 'offered'"), MAX_EVENTS_PER_INSTALL);
      assert.equal(count("SELECT COUNT(*) AS n FROM delivery_benchmarks WHERE device_id = 'liar' AND model_id = 'offered'"), MAX_BENCHMARKS_PER_INSTALL);
      assert.equal(count("SELECT COUNT(*) AS n FROM delivery_benchmarks WHERE device_id = 'liar' AND rollout_id IS NOT NULL"), 0, 'the claimed rollout id is not believed');
      // a 1,000-character reason does not even parse (the schema bounds it to 500)
      await c.publishAsync(deviceTopic('liar', 'report'), state('offered', 1, 'failed', 'y'.repeat(1000)), { qos: 1 });
      await waitFor('over-long reason rejected', async () => /edgefleet_mqtt_messages_rejected_total\{channel="report",reason="invalid-payload"\} [1-9]/.test((await fleet.api('/metrics')).text), 10_000);
      assert.equal(count("SELECT COUNT(*) AS n FROM delivery_install_events WHERE reason LIKE 'yyyy%'"), 0);
    });

    test('one device, one vote: several versions from one device count once in the model report', async () => {
      offer('liar', 'voted', 1);
      offer('liar', 'voted', 2);
      offer('honest', 'voted', 1);
      const liar = devices['liar']!;
      await liar.publishAsync(deviceTopic('liar', 'report'), bench('voted', 1, 1, 90), { qos: 1 });
      await liar.publishAsync(deviceTopic('liar', 'report'), bench('voted', 2, 1, 90), { qos: 1 });
      await devices['honest']!.publishAsync(deviceTopic('honest', 'report'), bench('voted', 1, 2, 1), { qos: 1 });
      await waitFor('3 benchmark rows', () => count("SELECT COUNT(*) AS n FROM delivery_benchmarks WHERE model_id = 'voted'") === 3, 10_000);
      const rep = await fleet.api('/reports/models/voted');
      assert.equal(rep.status, 200, rep.text);
      const profile = rep.body.profiles[0];
      assert.equal(profile.devices, 2, 'two devices, two votes');
      assert.equal(profile.medianSpeedupVsFp32, (90 + 0.5) / 2);
    });
  });
}
