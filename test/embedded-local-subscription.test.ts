import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { deviceTopic } from '../shared/topics.ts';
import { startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw, heartbeatPayload } from './helpers/raw-device.ts';

// With the embedded broker in its process, the control plane takes the devices' messages from aedes directly: no TCP
// hop, MQTT parse and PUBACK per message on its own connection (README "Sizing"). Its MQTT client only publishes.

const fleets: TestFleet[] = [];
after(async () => {
  for (const f of fleets) await f.stop().catch(() => {});
});

const heartbeat = (id: string, k: number): string => heartbeatPayload({ msgId: `${id}-hb-${k}`, uptimeSeconds: k });

test('embedded broker: device messages reach the control plane in process, its client subscribes to nothing, a will is handled, nothing after stop', async () => {
  const fleet = await startTestFleet('embedded');
  fleets.push(fleet);
  const aedes = (fleet.cp.ctx.broker as unknown as { aedes: { clients: Record<string, { subscriptions: Record<string, unknown> }> } }).aedes;
  const cpClient = Object.entries(aedes.clients).find(([id]) => id.startsWith('edgefleet-cp-'))?.[1];
  assert.ok(cpClient, "the control plane's client is connected (it publishes)");
  assert.deepEqual(Object.keys(cpClient.subscriptions), [], 'no MQTT subscription on its connection');

  const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 2 } })).body.token;
  const id = 'local-sub-1';
  const { password } = await enrollRaw(fleet.cp.brokerUrl, token, id);
  const device = await connectRaw(fleet.cp.brokerUrl, { clientId: id, username: id, password });
  await device.publishAsync(deviceTopic(id, 'status'), JSON.stringify({ v: 1, state: 'online', ts: 100 }), { qos: 1, retain: true });
  await device.publishAsync(deviceTopic(id, 'birth'), birthPayload(id), { qos: 1 });
  await waitFor('registered online', async () => (await fleet.api(`/devices/${id}`)).body.status === 'online');
  const accepted = async (): Promise<number> => Number(/^edgefleet_mqtt_messages_accepted_total\{channel="heartbeat"\} (\d+)/m.exec((await fleet.api('/metrics')).text)?.[1] ?? 0);
  for (let k = 0; k < 5; k++) await device.publishAsync(deviceTopic(id, 'heartbeat'), heartbeat(id, k), { qos: 1 });
  await waitFor('5 heartbeats accepted', async () => (await accepted()) === 5);

  // a will (published by aedes itself, no client) reaches the control plane the same way; as agents do, the will
  // carries the stamp of its connection's online
  const id2 = 'local-sub-2';
  const creds2 = await enrollRaw(fleet.cp.brokerUrl, token, id2);
  const { default: mqtt } = await import('mqtt');
  const dying = mqtt.connect(fleet.cp.brokerUrl, {
    protocolVersion: 4, clientId: id2, username: id2, password: creds2.password, reconnectPeriod: 0, clean: true,
    will: { topic: deviceTopic(id2, 'status'), payload: Buffer.from(JSON.stringify({ v: 1, state: 'offline', ts: 200 })), qos: 1, retain: true },
  });
  await new Promise<void>((r) => dying.once('connect', () => r()));
  await dying.publishAsync(deviceTopic(id2, 'status'), JSON.stringify({ v: 1, state: 'online', ts: 200 }), { qos: 1, retain: true });
  await waitFor('second device online', async () => (await fleet.api(`/devices/${id2}`)).body.status === 'online');
  (dying as unknown as { stream: { destroy(): void } }).stream.destroy(); // no DISCONNECT: the broker fires the will
  await waitFor('the will handled', async () => (await fleet.api(`/devices/${id2}`)).body.status === 'offline');

  // after the session stops nothing is handled: the broker answers the PUBACK after delivering in process
  const session = fleet.cp.ctx.fleet as unknown as { handle: (t: string, p: Buffer) => Promise<void>; stop(): Promise<void> };
  let handled = 0;
  const original = session.handle.bind(session);
  session.handle = (t, p) => (handled++, original(t, p));
  await device.publishAsync(deviceTopic(id, 'heartbeat'), heartbeat(id, 5), { qos: 1 });
  assert.equal(handled, 1, 'delivered before the PUBACK while subscribed');
  await session.stop();
  await device.publishAsync(deviceTopic(id, 'heartbeat'), heartbeat(id, 6), { qos: 1 });
  assert.equal(handled, 1, 'nothing handled after stop');
  await device.endAsync();
});
