import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deviceTopic, enrollRequestTopic, enrollResponseTopic } from '../shared/topics.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw, subscribeGrants } from './helpers/raw-device.ts';

for (const kind of BROKER_KINDS) {
  describe(`security and bad input on the ${kind} broker`, () => {
    let fleet: TestFleet;
    let token: string;
    const pw: Record<string, string> = {};

    before(async () => {
      fleet = await startTestFleet(kind);
      const t = await fleet.api('/enrollment-tokens', { method: 'POST', json: { label: 'test', maxUses: 10 } });
      assert.equal(t.status, 201);
      token = t.body.token;
      for (const id of ['alice', 'bob']) {
        const r = await enrollRaw(fleet.cp.brokerUrl, token, id);
        assert.equal(r.response.ok, true, JSON.stringify(r.response));
        pw[id] = r.password;
      }
    });
    after(async () => fleet?.stop());

    test('an enrolled device registers from its birth', async () => {
      const alice = await connectRaw(fleet.cp.brokerUrl, { clientId: 'alice', username: 'alice', password: pw.alice! });
      await alice.publishAsync(deviceTopic('alice', 'birth'), birthPayload('alice'), { qos: 1 });
      const d = await waitFor('alice online', async () => {
        const r = await fleet.api('/devices/alice');
        return r.body?.status === 'online' ? r.body : null;
      });
      assert.equal(d.profileId, 'generic-cpu');
      await alice.endAsync();
    });

    test("a device's credential cannot subscribe to or publish on another device's topics", async () => {
      const alice = await connectRaw(fleet.cp.brokerUrl, { clientId: 'alice', username: 'alice', password: pw.alice! });
      const grants = await subscribeGrants(alice, [deviceTopic('bob', 'cmd'), 'edgefleet/v1/devices/+/cmd', 'edgefleet/v1/#', deviceTopic('alice', 'cmd')]);
      assert.deepEqual(
        grants,
        [
          [deviceTopic('bob', 'cmd'), 128],
          ['edgefleet/v1/devices/+/cmd', 128],
          ['edgefleet/v1/#', 128],
          [deviceTopic('alice', 'cmd'), 1],
        ],
      );
      const bobBefore = (await fleet.api('/devices/bob')).body;
      // alice pretends to be bob; the broker must drop it (aedes also closes alice's connection)
      // not awaited: a broker that closes the connection instead never acknowledges it
      alice.publish(deviceTopic('bob', 'birth'), birthPayload('bob', { platform: 'darwin', arch: 'arm64' }), { qos: 1 }, () => {});
      await new Promise((r) => setTimeout(r, 500));
      const bobAfter = (await fleet.api('/devices/bob')).body;
      assert.equal(bobAfter.births, bobBefore.births, 'the control plane never saw the forged birth');
      assert.equal(bobAfter.facts, null);
      alice.end(true);
    });

    test('a device cannot log in as another device, nor with a wrong password', async () => {
      await assert.rejects(connectRaw(fleet.cp.brokerUrl, { clientId: 'bob', username: 'alice', password: pw.alice! }));
      await assert.rejects(connectRaw(fleet.cp.brokerUrl, { clientId: 'alice', username: 'alice', password: 'wrong-password-wrong-password' }));
    });

    test('an enrollee cannot subscribe to device topics; answers carry no secret; a revoked token cannot enroll', async () => {
      const [tokenId, secret] = token.split('.') as [string, string];
      const enrollee = await connectRaw(fleet.cp.brokerUrl, { clientId: 'enroll-carol', username: `enroll-${tokenId}`, password: secret });
      const g = await subscribeGrants(enrollee, [enrollResponseTopic('alice'), enrollResponseTopic('carol'), deviceTopic('alice', 'cmd')]);
      // both brokers hold an enrollee to the id its client id names (Mosquitto through EdgeFleet's plugin)
      assert.deepEqual(g.map(([, qos]) => qos), [128, 1, 128]);
      const answer = await enrollRaw(fleet.cp.brokerUrl, token, 'carol');
      assert.ok(answer.response.ok);
      assert.deepEqual(Object.keys(answer.response).sort(), ['deviceId', 'ok', 'signingPublicKey', 'v'], 'nothing secret in the answer');
      assert.ok(!JSON.stringify(answer.response).includes(answer.password));
      await enrollee.endAsync();
      assert.equal((await fleet.api(`/enrollment-tokens/${tokenId}`, { method: 'DELETE' })).status, 200);
      await assert.rejects(enrollRaw(fleet.cp.brokerUrl, token, 'dave'));
      const list = await fleet.api('/enrollment-tokens');
      assert.equal(list.body.items.find((t: { id: string }) => t.id === tokenId).state, 'enrollment token revoked');
    });

    test('a second enrollment of an enrolled id is refused', async () => {
      const t = await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 5 } });
      const r = await enrollRaw(fleet.cp.brokerUrl, t.body.token, 'alice');
      assert.equal(r.response.ok, false);
      assert.match((r.response as { error: string }).error, /already enrolled/);
    });

    test('malformed payloads are rejected, counted, and service goes on', async () => {
      const bob = await connectRaw(fleet.cp.brokerUrl, { clientId: 'bob', username: 'bob', password: pw.bob! });
      const metric = async (reason: string) => {
        const m = await fleet.api('/metrics');
        const line = m.text.split('\n').find((l) => l.startsWith('edgefleet_mqtt_messages_rejected_total{') && l.includes(`reason="${reason}"`) && l.includes('channel="birth"'));
        return line ? Number(line.split(' ').pop()) : 0;
      };
      const before = await metric('invalid-payload');
      await bob.publishAsync(deviceTopic('bob', 'birth'), 'this is not json', { qos: 1 });
      await bob.publishAsync(deviceTopic('bob', 'birth'), JSON.stringify({ v: 1, type: 'birth' }), { qos: 1 });
      await bob.publishAsync(deviceTopic('bob', 'birth'), Buffer.from([0xff, 0xfe, 0x00]), { qos: 1 });
      await waitFor('3 rejections counted', async () => (await metric('invalid-payload')) - before >= 3);
      const mismatch = await metric('device-id-mismatch');
      await bob.publishAsync(deviceTopic('bob', 'birth'), birthPayload('alice'), { qos: 1 });
      await waitFor('mismatch counted', async () => (await metric('device-id-mismatch')) > mismatch);
      await bob.publishAsync(deviceTopic('bob', 'birth'), birthPayload('bob', { arch: 'arm64', cpu: { cores: 4, flags: ['asimddp'] } }), { qos: 1 });
      const d = await waitFor('bob registered after the garbage', async () => {
        const r = await fleet.api('/devices/bob');
        return r.body?.status === 'online' ? r.body : null;
      });
      assert.equal(d.profileId, 'armv82-dotprod');
      assert.equal((await fleet.api('/healthz', { auth: null })).status, 200);
      await bob.endAsync();
    });

    test('revoking a device removes its credential and disconnects it', async () => {
      const bob = await connectRaw(fleet.cp.brokerUrl, { clientId: 'bob', username: 'bob', password: pw.bob! });
      const closed = new Promise<void>((resolve) => bob.once('close', () => resolve()));
      assert.equal((await fleet.api('/devices/bob', { method: 'DELETE' })).status, 200);
      await closed;
      bob.end(true);
      await assert.rejects(connectRaw(fleet.cp.brokerUrl, { clientId: 'bob', username: 'bob', password: pw.bob! }));
      const d = (await fleet.api('/devices/bob')).body;
      assert.equal(d.status, 'revoked');
      assert.ok(d.revokedAt > 0);
    });

    test('enrollment requests for another id are refused by the broker or the control plane', async () => {
      const t = await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 5 } });
      const [tokenId, secret] = (t.body.token as string).split('.') as [string, string];
      const c = await connectRaw(fleet.cp.brokerUrl, { clientId: 'enroll-eve', username: `enroll-${tokenId}`, password: secret });
      // eve asks with a payload for mallory on mallory's topic: no credential may come of it without the token owner's consent
      c.publish(enrollRequestTopic('mallory'), JSON.stringify({ v: 1, msgId: 'x'.repeat(10), ts: 1, deviceId: 'mallory', token: 'bad.token', password: 'p'.repeat(40), agentVersion: 'x' }), { qos: 1 }, () => {});
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await fleet.api('/devices/mallory')).status, 404);
      c.end(true);
    });
  });
}
