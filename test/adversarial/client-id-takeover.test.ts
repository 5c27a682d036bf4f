import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deviceTopic, enrollClientId } from '../../shared/topics.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from '../helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw } from '../helpers/raw-device.ts';

/**
 * Issue 8 item 3: an enrollee (or any login) connecting with an enrolled device's client id used to
 * take over that device's session: the device was kicked, its will fired and it flapped offline/online.
 * Replayed on both brokers; a login may only use its own client id.
 */
for (const kind of BROKER_KINDS) {
  describe(`client-id takeover on the ${kind} broker`, () => {
    let fleet: TestFleet;
    let token: string;
    const pw: Record<string, string> = {};

    before(async () => {
      fleet = await startTestFleet(kind);
      const t = await fleet.api('/enrollment-tokens', { method: 'POST', json: { label: 'takeover', maxUses: 10 } });
      assert.equal(t.status, 201);
      token = t.body.token;
      for (const id of ['victim', 'mallory']) {
        const r = await enrollRaw(fleet.cp.brokerUrl, token, id);
        assert.equal(r.response.ok, true, JSON.stringify(r.response));
        pw[id] = r.password;
      }
    });
    after(async () => fleet?.stop());

    test("no enrollee and no other device can use an enrolled device's client id; the device stays connected and online", async () => {
      const will = { topic: deviceTopic('victim', 'status'), payload: Buffer.from(JSON.stringify({ v: 1, msgId: 'will-victim-0001', ts: Date.now(), state: 'offline' })), qos: 1 as const, retain: true };
      const victim = await connectRaw(fleet.cp.brokerUrl, { clientId: 'victim', username: 'victim', password: pw.victim!, will } as never);
      let kicked = false;
      victim.on('close', () => (kicked = true));
      await victim.publishAsync(deviceTopic('victim', 'birth'), birthPayload('victim'), { qos: 1 });
      await waitFor('victim online', async () => (await fleet.api('/devices/victim')).body?.status === 'online');
      const historyBefore = (await fleet.api('/devices/victim')).body.statusHistory.length;

      const [tokenId, secret] = token.split('.') as [string, string];
      const attempts: [string, { clientId: string; username: string; password: string }][] = [
        ['enrollee with the victim id as client id', { clientId: 'victim', username: `enroll-${tokenId}`, password: secret }],
        ['another device with the victim id as client id', { clientId: 'victim', username: 'mallory', password: pw.mallory! }],
        ['another device with the victim enrollee client id', { clientId: enrollClientId('victim'), username: 'mallory', password: pw.mallory! }],
        ['enrollee with a non-enrollee client id', { clientId: 'someone-else', username: `enroll-${tokenId}`, password: secret }],
      ];
      for (const [what, opts] of attempts) {
        await assert.rejects(connectRaw(fleet.cp.brokerUrl, opts), `${what} must be refused`);
      }
      // the refused logins are counted (Mosquitto's plugin reports its counters every 2 s)
      await waitFor('client-id refusals counted', async () => /edgefleet_broker_auth_failures_total\{reason="client-id"\} [1-9]/.test((await fleet.api('/metrics')).text));

      // give a takeover every chance to show: the victim's connection survives, no will, no offline record
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(kicked, false, 'the victim was not disconnected');
      assert.ok(victim.connected);
      const after = (await fleet.api('/devices/victim')).body;
      assert.equal(after.status, 'online');
      assert.equal(after.statusHistory.length, historyBefore, 'no offline/online flap recorded');
      victim.end(true);
    });

    test('enrollees with one token enroll many devices at once, each under its own client id', async () => {
      const ids = Array.from({ length: 5 }, (_, i) => `parallel-${i}`);
      const results = await Promise.all(ids.map((id) => enrollRaw(fleet.cp.brokerUrl, token, id)));
      assert.deepEqual(results.map((r) => r.response.ok), ids.map(() => true));
    });
  });
}
