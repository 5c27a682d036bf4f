import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { keepPublishesWithoutCopy } from '../control-plane/fleet/publish-store.ts';
import { deviceTopic } from '../shared/topics.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { connectRaw, enrollRaw } from './helpers/raw-device.ts';

type Kept = { cmd: string; topic?: unknown; payload?: unknown; messageId?: number };

for (const kind of BROKER_KINDS) {
  describe(`control plane QoS 1 publishes on the ${kind} broker: kept for a resend without copying the payload`, () => {
    let fleet: TestFleet;
    let device: MqttClient;
    const id = `pubstore-${kind}`;
    before(async () => {
      fleet = await startTestFleet(kind);
      const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 1 } })).body.token as string;
      const { password } = await enrollRaw(fleet.cp.brokerUrl, token, id);
      device = await connectRaw(fleet.cp.brokerUrl, { clientId: id, username: id, password });
      await device.subscribeAsync(deviceTopic(id, 'xfer/data'), { qos: 1 });
    });
    after(async () => {
      device?.end(true);
      await fleet?.stop();
    });

    test('the kept packet holds the very payload buffer, and the device receives it byte for byte', async () => {
      // the control plane's own client (private to the fleet session), whose store is watched for this test
      const store = (fleet.cp.ctx.fleet as unknown as { client: { outgoingStore: { put: (p: Kept, cb: () => void) => unknown } } }).client.outgoingStore;
      const kept: Kept[] = [];
      const put = store.put.bind(store);
      store.put = (p: Kept, cb: () => void) => (kept.push(p), put(p, cb));
      const got: Buffer[] = [];
      device.on('message', (_t, payload) => got.push(payload));
      const chunks = [randomBytes(256 * 1024), randomBytes(1000)];
      try {
        for (const c of chunks) await fleet.cp.ctx.fleet.publish(deviceTopic(id, 'xfer/data'), c, 1);
      } finally {
        store.put = put;
      }
      await waitFor('both messages', () => got.length === 2);
      assert.deepEqual(got, chunks);
      const mine = kept.filter((p) => p.topic === deviceTopic(id, 'xfer/data'));
      assert.equal(mine.length, 2);
      assert.ok(mine[0]!.payload === chunks[0] && mine[1]!.payload === chunks[1], 'kept packets share the published buffers');
      assert.equal(typeof mine[0]!.messageId, 'number');
    });
  });
}

describe('keepPublishesWithoutCopy: what takes mqtt.js own path', () => {
  /** A stand-in with the two internals the wrapper uses; records which path each packet took. */
  function fake() {
    const calls: string[] = [];
    const kept: Kept[] = [];
    const c = {
      outgoingStore: { put: (p: Kept, cb: () => void) => (kept.push(p), cb()) },
      _storeAndSend(p: Kept) {
        calls.push(`own:${String(p.cmd)}`);
      },
      _writePacket(p: Kept, cb?: () => void) {
        calls.push(`write:${String(p.topic)}`);
        cb?.();
      },
    };
    keepPublishesWithoutCopy(c as unknown as MqttClient);
    const send = (p: Kept & { properties?: { topicAlias?: number } }): void => (c as unknown as { _storeAndSend: (p: unknown, cb: () => void) => void })._storeAndSend(p, () => {});
    return { calls, kept, send };
  }

  test('a plain publish is kept as a shallow copy (same payload) and written', () => {
    const f = fake();
    const payload = Buffer.from('x');
    const packet = { cmd: 'publish', topic: 'a/b', payload, qos: 1, messageId: 7 };
    f.send(packet);
    assert.deepEqual(f.calls, ['write:a/b']);
    assert.notEqual(f.kept[0], packet);
    assert.equal(f.kept[0]!.payload, payload);
  });

  test('a topic alias, an empty topic (alias only) and a PUBREL go to mqtt.js', () => {
    const f = fake();
    f.send({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), properties: { topicAlias: 3 } });
    f.send({ cmd: 'publish', topic: '', payload: Buffer.from('x'), properties: { topicAlias: 3 } });
    f.send({ cmd: 'pubrel', messageId: 9 });
    assert.deepEqual(f.calls, ['own:publish', 'own:publish', 'own:pubrel']);
    assert.equal(f.kept.length, 0);
  });

  test('a client without those internals is left as it is', () => {
    const c = { on: () => {} };
    assert.equal(keepPublishesWithoutCopy(c as unknown as MqttClient), c);
    assert.deepEqual(Object.keys(c), ['on']);
  });
});
