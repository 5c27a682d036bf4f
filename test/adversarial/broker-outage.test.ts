import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newMsgId } from '../../shared/messages.ts';
import { enrollRequestTopic, transferDataTopic } from '../../shared/topics.ts';
import { startTestFleet, waitFor, type TestFleet } from '../helpers/control-plane.ts';
import { connectRaw, enrollRaw, subscribeGrants } from '../helpers/raw-device.ts';

const OUTAGE_MS = 15_000;

/**
 * Issue 8 item 5: with Mosquitto down for more than 10 s, a dynamic-security command (POST
 * /enrollment-tokens) ended in an unhandled rejection and the control plane exited. Replayed: Mosquitto
 * is stopped for 15 s while every HTTP route is called. Nothing crashes, routes that need the broker
 * answer 503 with the reason, revocations made meanwhile and a grant started meanwhile are applied
 * once it returns. Issue 10: a grant the broker never took leaves no device row behind.
 */
describe('Mosquitto outage', () => {
  let fleet: TestFleet;
  const pw: Record<string, string> = {};
  let spareToken = '';
  const crashes: unknown[] = [];
  const onCrash = (e: unknown): void => void crashes.push(e);

  before(async () => {
    process.on('unhandledRejection', onCrash);
    process.on('uncaughtException', onCrash);
    fleet = await startTestFleet('mosquitto', {}, undefined, { grantTimeoutMs: 30_000 });
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 5 } })).body.token;
    for (const id of ['keeper', 'doomed']) pw[id] = (await enrollRaw(fleet.cp.brokerUrl, token, id)).password;
    spareToken = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 5 } })).body.token;
  });
  after(async () => {
    process.off('unhandledRejection', onCrash);
    process.off('uncaughtException', onCrash);
    await fleet?.stop();
  });

  test('15 s down while every route is called: no crash, 503s with the reason, changes applied on return', async () => {
    const m = fleet.mosquitto!;
    const stoppedAt = Date.now();
    await m.stop();
    await waitFor('healthz reports the broker down', async () => (await fleet.api('/healthz', { auth: null })).status === 503);

    // every route of the OpenAPI document, with path parameters filled and an empty JSON body
    const doc = (await fleet.api('/openapi.json', { auth: null })).body as { paths: Record<string, Record<string, unknown>> };
    const statuses: Record<string, number> = {};
    const mutating = new Set(['delete /devices/{id}', 'delete /enrollment-tokens/{id}']);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        if (mutating.has(`${method} ${path}`)) continue;
        const url = path.replace(/\{[^}]+\}/g, 'keeper');
        const r = await fleet.api(url, { method: method.toUpperCase(), ...(['post', 'put', 'patch'].includes(method) ? { json: {} } : {}) });
        statuses[`${method.toUpperCase()} ${path}`] = r.status;
        assert.ok(r.status < 500 || r.status === 503, `${method} ${path} answered ${r.status} during the outage: ${r.text.slice(0, 200)}`);
      }
    }
    assert.ok(Object.keys(statuses).length >= 10, `called ${Object.keys(statuses).length} routes`);

    // a route that needs the broker says so
    const created = await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 1 } });
    assert.equal(created.status, 503);
    assert.equal(created.body.error, 'broker-unavailable');
    assert.match(created.body.message, /unreachable/);
    const rebirth = await fleet.api('/devices/keeper/rebirth', { method: 'POST', json: {} });
    assert.equal(rebirth.status, 503, rebirth.text);

    // revocations are effective in the store at once and reach the broker when it is back
    assert.equal((await fleet.api('/devices/doomed', { method: 'DELETE' })).status, 200);
    const spareId = spareToken.split('.')[0]!;
    assert.equal((await fleet.api(`/enrollment-tokens/${spareId}`, { method: 'DELETE' })).status, 200);
    // a grant asked for during the outage waits for the broker instead of failing the process
    const grant = fleet.cp.ctx.broker.grantTransferRead('outage-transfer', ['keeper']);

    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + OUTAGE_MS - Date.now())));
    await m.start();
    await waitFor('broker back and logins resynchronised', async () => fleet.cp.ctx.broker.availability().ok && (await fleet.api('/healthz', { auth: null })).status === 200, 30_000);
    await grant;

    const keeper = await connectRaw(fleet.cp.brokerUrl, { clientId: 'keeper', username: 'keeper', password: pw.keeper! });
    assert.deepEqual(await subscribeGrants(keeper, [transferDataTopic('outage-transfer')]), [[transferDataTopic('outage-transfer'), 1]]);
    keeper.end(true);
    await assert.rejects(connectRaw(fleet.cp.brokerUrl, { clientId: 'doomed', username: 'doomed', password: pw.doomed! }), 'revoked during the outage');
    await assert.rejects(enrollRaw(fleet.cp.brokerUrl, spareToken, 'via-revoked-token'), 'token revoked during the outage');
    const fresh = await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 1 } });
    assert.equal(fresh.status, 201);
    assert.equal((await enrollRaw(fleet.cp.brokerUrl, fresh.body.token, 'after-outage')).response.ok, true);
    assert.deepEqual(crashes, [], 'no unhandled rejection or exception');
  });
});

describe('grant, then row', () => {
  let fleet: TestFleet;
  const crashes: unknown[] = [];
  const onCrash = (e: unknown): void => void crashes.push(e);
  before(async () => {
    process.on('unhandledRejection', onCrash);
    fleet = await startTestFleet('mosquitto', {}, undefined, { grantTimeoutMs: 2000 });
  });
  after(async () => {
    process.off('unhandledRejection', onCrash);
    await fleet?.stop();
  });

  test('a grant the broker does not take leaves no device row and no used-up token (grant, then row)', async () => {
    const t = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 1 } })).body.token as string;
    await fleet.mosquitto!.stop();
    await waitFor('session down', () => !fleet.cp.ctx.broker.availability().ok);
    // the enrollment request as the control plane would receive it; the grant cannot reach the broker
    const req = { v: 1, msgId: newMsgId(), ts: Date.now(), deviceId: 'half-done', token: t, password: 'p'.repeat(43), agentVersion: 'test' };
    await fleet.cp.ctx.fleet.handle(enrollRequestTopic('half-done'), Buffer.from(JSON.stringify(req)));
    assert.equal((await fleet.api('/devices/half-done')).status, 404, 'no device row without a broker login');
    const tokenRow = (await fleet.api('/enrollment-tokens')).body.items.find((x: { id: string }) => x.id === t.split('.')[0]);
    assert.equal(tokenRow.uses, 0, 'the token use is not spent');
    await fleet.mosquitto!.start();
    await waitFor('broker back', () => fleet.cp.ctx.broker.availability().ok, 30_000);
    const r = await enrollRaw(fleet.cp.brokerUrl, t, 'half-done');
    assert.equal(r.response.ok, true, JSON.stringify(r.response));
    const c = await connectRaw(fleet.cp.brokerUrl, { clientId: 'half-done', username: 'half-done', password: r.password });
    c.end(true);
    assert.deepEqual(crashes, []);
  });
});
