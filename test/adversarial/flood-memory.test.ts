import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { after, before, describe, test } from 'node:test';
import { createDeliveryExtension } from '../../control-plane/delivery/index.ts';
import { createLogger } from '../../control-plane/log.ts';
import { newMsgId } from '../../shared/messages.ts';
import { deviceTopic } from '../../shared/topics.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from '../helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw } from '../helpers/raw-device.ts';

/**
 * Issue 8 item 8: 200,000 unknown transfer ids grew the transfer server's stats map by 47 MiB for good, each
 * rejection wrote a 316-byte log line (67 MB of log), and replayed msgIds were dropped uncounted. Replayed on both
 * brokers from one real device login: 20,000 requests for unknown transfers leave no per-id state behind, the log gets
 * one line per device and reason per minute (with the count), the metric counts every one, and replays are counted.
 */
const N = 20_000;

for (const kind of BROKER_KINDS) {
  describe(`a flood of refused requests, on the ${kind} broker`, () => {
    let fleet: TestFleet;
    let c: MqttClient;
    const lines: { msg: string; [k: string]: unknown }[] = [];
    const { extension, service } = createDeliveryExtension();
    const metric = async (re: RegExp): Promise<number> => Number(re.exec((await fleet.api('/metrics')).text)?.[1] ?? 0);

    before(async () => {
      fleet = await startTestFleet(kind, { extensions: [extension], log: createLogger({ level: 'info', sink: (l) => lines.push(JSON.parse(l)) }) });
      const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 1 } })).body.token;
      const { password } = await enrollRaw(fleet.cp.brokerUrl, token, 'flooder');
      c = await connectRaw(fleet.cp.brokerUrl, { clientId: 'flooder', username: 'flooder', password });
      await c.publishAsync(deviceTopic('flooder', 'birth'), birthPayload('flooder'), { qos: 1 });
      await waitFor('registered', () => fleet.cp.ctx.devices.get('flooder')?.profileId);
    });
    after(async () => {
      await c?.endAsync();
      await fleet?.stop();
    });

    test(`${N} requests for unknown transfer ids: no per-id state kept, one log line, every one counted`, async () => {
      const linesBefore = lines.filter((l) => l.msg === 'transfer request refused').length;
      for (let i = 0; i < N; i++) {
        c.publish(deviceTopic('flooder', 'xfer/req'), JSON.stringify({ v: 1, msgId: newMsgId(), ts: Date.now(), transferId: randomBytes(16).toString('hex'), chunks: [0] }), { qos: 0 });
        if (i % 500 === 499) await new Promise((r) => setImmediate(r));
      }
      const re = /edgefleet_delivery_requests_refused_total\{reason="unknown-transfer"\} (\d+)/;
      // QoS 0 under a flood may lose a few on the wire; what arrived is all counted
      await waitFor('the flood processed', async () => (await metric(re)) >= N * 0.95, 60_000, 250);
      const counted = await metric(re);
      assert.equal(service.transfers.trackedPairs, 0, 'no stats kept for transfers never offered');
      const logged = lines.filter((l) => l.msg === 'transfer request refused').length - linesBefore;
      assert.ok(logged <= 2, `${logged} log lines for ${counted} refusals`);
    });

    test('malformed payloads: counted per message, logged once per device and reason', async () => {
      const linesBefore = lines.filter((l) => l.msg === 'message rejected').length;
      for (let i = 0; i < 2000; i++) c.publish(deviceTopic('flooder', 'heartbeat'), '{"v":1,"garbage":' + i + '}', { qos: 0 });
      await waitFor('2000 rejected', async () => (await metric(/edgefleet_mqtt_messages_rejected_total\{channel="heartbeat",reason="invalid-payload"\} (\d+)/)) >= 1900, 30_000, 250);
      const logged = lines.filter((l) => l.msg === 'message rejected').length - linesBefore;
      assert.ok(logged <= 2, `${logged} log lines`);
    });

    test('replayed msgIds are counted', async () => {
      const hb = JSON.stringify({ v: 1, msgId: 'replay-0001', ts: Date.now(), type: 'heartbeat', agentVersion: 'x', uptimeSeconds: 1, load1: 0, cpuPercent: null, memUsedBytes: 1, memTotalBytes: 2, temperatureC: null, activeModel: null });
      for (let i = 0; i < 200; i++) await c.publishAsync(deviceTopic('flooder', 'heartbeat'), hb, { qos: 1 });
      await waitFor('replays counted', async () => (await metric(/edgefleet_mqtt_messages_replayed_total\{channel="heartbeat"\} (\d+)/)) >= 199, 20_000, 250);
      const req = JSON.stringify({ v: 1, msgId: 'replay-xfer-1', ts: Date.now(), transferId: 'abc', chunks: [0] });
      for (let i = 0; i < 50; i++) await c.publishAsync(deviceTopic('flooder', 'xfer/req'), req, { qos: 1 });
      await waitFor('xfer replays counted', async () => (await metric(/edgefleet_mqtt_messages_replayed_total\{channel="xfer\/req"\} (\d+)/)) >= 49, 20_000, 250);
    });
  });
}
