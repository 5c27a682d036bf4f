import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_MQTT_PACKET_BYTES } from '../../shared/transfer.ts';
import { deviceTopic } from '../../shared/topics.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from '../helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw } from '../helpers/raw-device.ts';

const metric = (text: string, name: string, label = ''): number =>
  text
    .split('\n')
    .filter((l) => l.startsWith(name) && l.includes(label))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);

/**
 * Issue 8 item 6 (MQTT part): no packet-size limit on either broker, and devices could publish
 * retained messages anywhere in their subtree. Replayed on both brokers: a packet over the limit (one
 * maximal transfer chunk plus headers) closes the connection, and a retained publish is refused
 * everywhere but `status`; the control plane and other devices carry on.
 */
for (const kind of BROKER_KINDS) {
  describe(`MQTT packet size and retained messages on the ${kind} broker`, () => {
    let fleet: TestFleet;
    const pw: Record<string, string> = {};

    before(async () => {
      fleet = await startTestFleet(kind);
      const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 5 } })).body.token;
      for (const id of ['big', 'bystander']) pw[id] = (await enrollRaw(fleet.cp.brokerUrl, token, id)).password;
    });
    after(async () => fleet?.stop());

    test('a packet over the limit closes the connection (counted on the embedded broker); others carry on', async () => {
      const rssBefore = process.memoryUsage().rss;
      const big = await connectRaw(fleet.cp.brokerUrl, { clientId: 'big', username: 'big', password: pw.big! });
      const closed = new Promise<void>((resolve) => big.once('close', () => resolve()));
      big.on('error', () => {});
      big.publish(deviceTopic('big', 'report'), Buffer.alloc(MAX_MQTT_PACKET_BYTES + 1024, 0x61), { qos: 0 });
      await closed;
      big.end(true);
      if (kind === 'embedded') {
        await waitFor('oversize counted', async () => metric((await fleet.api('/metrics')).text, 'edgefleet_broker_oversize_packets_total') >= 1);
        // the limit acts on the announced length: the body was never buffered
        assert.ok(process.memoryUsage().rss - rssBefore < MAX_MQTT_PACKET_BYTES * 4, 'no copy of the oversized body kept');
      }
      const bystander = await connectRaw(fleet.cp.brokerUrl, { clientId: 'bystander', username: 'bystander', password: pw.bystander! });
      await bystander.publishAsync(deviceTopic('bystander', 'birth'), birthPayload('bystander'), { qos: 1 });
      await waitFor('bystander registered', async () => (await fleet.api('/devices/bystander')).body?.status === 'online');
      assert.equal((await fleet.api('/healthz', { auth: null })).status, 200);
      bystander.end(true);
    });

    test('a packet at the limit is carried (a maximal chunk fits)', async () => {
      const big = await connectRaw(fleet.cp.brokerUrl, { clientId: 'big', username: 'big', password: pw.big! });
      // xfer/req is a device topic the control plane reads; the payload is junk and rejected as such, but delivered
      const rejected = metric((await fleet.api('/metrics')).text, 'edgefleet_mqtt_messages_rejected_total', 'channel="xfer/req"');
      await big.publishAsync(deviceTopic('big', 'xfer/req'), Buffer.alloc(MAX_MQTT_PACKET_BYTES - 200, 0x61), { qos: 1 });
      await waitFor('large packet reached the control plane', async () => metric((await fleet.api('/metrics')).text, 'edgefleet_mqtt_messages_rejected_total', 'channel="xfer/req"') > rejected, 30_000);
      big.end(true);
    });

    test('retained publishes are refused except on status', async () => {
      const dev = await connectRaw(fleet.cp.brokerUrl, { clientId: 'bystander', username: 'bystander', password: pw.bystander! });
      dev.on('error', () => {});
      const status = JSON.stringify({ v: 1, msgId: `st-${Date.now()}`, ts: Date.now(), state: 'online' });
      await dev.publishAsync(deviceTopic('bystander', 'status'), status, { qos: 1, retain: true });
      // not awaited: aedes closes the connection of a refused publish instead of acknowledging it
      dev.publish(deviceTopic('bystander', 'heartbeat'), 'x', { qos: 1, retain: true }, () => {});
      await waitFor('retained publish refused and counted', async () => metric((await fleet.api('/metrics')).text, 'edgefleet_broker_acl_denied_total', 'action="publish-retained"') >= 1);
      dev.end(true);
      if (fleet.mosquitto) {
        // what a new subscriber would get: the retained status, and nothing retained on heartbeat
        const m = fleet.mosquitto;
        const admin = await connectRaw(m.url, { clientId: 'edgefleet-test-reader', username: m.username, password: m.password });
        const got: string[] = [];
        admin.on('message', (topic, _p, packet) => packet.retain && got.push(topic));
        await admin.subscribeAsync([deviceTopic('bystander', 'status'), deviceTopic('bystander', 'heartbeat')], { qos: 1 });
        await waitFor('retained status delivered', () => got.includes(deviceTopic('bystander', 'status')));
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(got, [deviceTopic('bystander', 'status')]);
        admin.end(true);
      }
    });
  });
}
