import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashSecret } from '../../control-plane/store/secrets.ts';
import { enrollClientId, enrollRequestTopic, enrollUsername } from '../../shared/topics.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from '../helpers/control-plane.ts';
import { connectRaw, enrollRaw } from '../helpers/raw-device.ts';

/**
 * Issue 8 item 2, broker side: enrolling the id `edgefleet-control-plane` on Mosquitto made the control
 * plane delete its own dynamic-security admin client (it crashed and could not start again), and
 * `enroll-<another token id>` deleted that token's login. Replayed on both brokers: refused at the
 * broker and in the control plane; the control plane still logs in and keeps working.
 */
for (const kind of BROKER_KINDS) {
  describe(`reserved ids on the ${kind} broker`, () => {
    let fleet: TestFleet;
    let token: string;
    let otherToken: string;

    before(async () => {
      fleet = await startTestFleet(kind);
      token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { label: 'attacker', maxUses: 20 } })).body.token;
      otherToken = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { label: 'victim token', maxUses: 5 } })).body.token;
    });
    after(async () => fleet?.stop());

    test('enrolling a reserved id is refused; the control plane and the other token keep working', async () => {
      const otherTokenId = otherToken.split('.')[0]!;
      for (const id of ['edgefleet-control-plane', `enroll-${otherTokenId}`, 'edgefleet-cp-1', 'admin', 'mosquitto']) {
        // the broker refuses the enrollee's client id `enroll-<reserved>` outright
        await assert.rejects(enrollRaw(fleet.cp.brokerUrl, token, id), `enrollment of "${id}" must be refused`);
        assert.equal((await fleet.api(`/devices/${encodeURIComponent(id)}`)).status === 200, false, `${id} never becomes a device`);
      }
      // and a request naming a reserved id from a legitimate enrollee connection never reaches a grant
      const [tokenId, secret] = token.split('.') as [string, string];
      const c = await connectRaw(fleet.cp.brokerUrl, { clientId: enrollClientId('honest'), username: enrollUsername(tokenId), password: secret });
      c.publish(enrollRequestTopic('edgefleet-control-plane'), JSON.stringify({ v: 1, msgId: 'reserved-0001', ts: Date.now(), deviceId: 'edgefleet-control-plane', token, password: 'p'.repeat(43), agentVersion: 'x' }), { qos: 1 }, () => {});
      await new Promise((r) => setTimeout(r, 300));
      c.end(true);

      // the control plane's own broker session was never touched: a fresh start logs in again
      await fleet.restartControlPlane();
      assert.equal((await fleet.api('/healthz', { auth: null })).status, 200);
      // the other token's login still works
      const r = await enrollRaw(fleet.cp.brokerUrl, otherToken, 'after-attack');
      assert.equal(r.response.ok, true, JSON.stringify(r.response));
      await waitFor('after-attack listed', async () => (await fleet.api('/devices/after-attack')).status === 200);
    });

    test('the broker adapter itself never grants or revokes a reserved login', async () => {
      const broker = fleet.cp.ctx.broker;
      await assert.rejects(broker.grantDevice('edgefleet-control-plane', hashSecret('x'.repeat(40))));
      await assert.rejects(broker.grantDevice('enroll-abcdef123456', hashSecret('x'.repeat(40))));
      await broker.revokeDevice('edgefleet-control-plane'); // a no-op, never the control plane's own login
      await fleet.restartControlPlane();
      assert.equal((await fleet.api('/healthz', { auth: null })).status, 200);
      const t = await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 1 } });
      assert.equal(t.status, 201);
    });
  });
}
