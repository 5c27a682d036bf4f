import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { transferDataTopic } from '../shared/topics.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { connectRaw, enrollRaw, subscribeGrants } from './helpers/raw-device.ts';

/**
 * The read-only per-transfer grant (BrokerAccess.grantTransferRead / revokeTransfer) on both brokers:
 * granted devices subscribe to and receive the shared data topic, others cannot, nobody but the
 * control plane publishes there, and a revocation stops the data at once.
 */
for (const kind of BROKER_KINDS) {
  describe(`transfer read grants on the ${kind} broker`, () => {
    let fleet: TestFleet;
    const pw: Record<string, string> = {};
    before(async () => {
      fleet = await startTestFleet(kind);
      const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 5 } })).body.token;
      for (const id of ['offered', 'bystander']) pw[id] = (await enrollRaw(fleet.cp.brokerUrl, token, id)).password;
    });
    after(async () => fleet?.stop());

    test('granted devices read, others cannot, devices never publish, revocation stops the data', async () => {
      const topic = transferDataTopic('xfer-1');
      await fleet.cp.ctx.broker.grantTransferRead('xfer-1', ['offered']);
      const offered = await connectRaw(fleet.cp.brokerUrl, { clientId: 'offered', username: 'offered', password: pw.offered! });
      const bystander = await connectRaw(fleet.cp.brokerUrl, { clientId: 'bystander', username: 'bystander', password: pw.bystander! });
      assert.deepEqual(await subscribeGrants(offered, [topic, 'edgefleet/v1/transfers/+/data', transferDataTopic('xfer-2')]), [
        [topic, 1],
        ['edgefleet/v1/transfers/+/data', 128],
        [transferDataTopic('xfer-2'), 128],
      ]);
      assert.deepEqual(await subscribeGrants(bystander, [topic]), [[topic, 128]]);
      const got: string[] = [];
      offered.on('message', (_t, p) => got.push(p.toString()));
      await fleet.cp.ctx.fleet.publish(topic, 'chunk-1');
      await waitFor('chunk delivered', () => got.includes('chunk-1'));
      // a device publishing on the shared topic is refused (aedes closes its connection, Mosquitto drops it)
      bystander.on('error', () => {});
      bystander.publish(topic, 'forged', { qos: 1 }, () => {});
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(!got.includes('forged'));
      await fleet.cp.ctx.broker.revokeTransfer('xfer-1');
      await fleet.cp.ctx.fleet.publish(topic, 'chunk-2');
      await fleet.cp.ctx.fleet.publish(topic, 'chunk-3');
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(got, ['chunk-1'], 'nothing after the revocation');
      offered.end(true);
      bystander.end(true);
    });
  });
}
