import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { connectRaw, enrollRaw } from './helpers/raw-device.ts';

// The embedded broker shares the control plane's open files: at the open-file limit HTTP stopped answering
// (20,000 agents on a host whose limit is 20,000). Past the cap a connection is closed at accept, counted,
// and the control plane stays reachable. Cap 4 = the control plane's own client + 3 devices.
const fleets: TestFleet[] = [];
const clients: MqttClient[] = [];
after(async () => {
  for (const c of clients) c.end(true);
  for (const f of fleets) await f.stop();
});

async function refusedCount(fleet: TestFleet): Promise<number> {
  const m = await fleet.api('/metrics');
  const line = m.text.split('\n').find((l) => l.startsWith('edgefleet_broker_connections_refused_total{reason="max-connections"}'));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Resolves with whether the broker closed a bare TCP connection without a byte (refused at accept) within 10 s. */
function closedAtAccept(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), hostname);
    const timer = setTimeout(() => (s.destroy(), resolve(false)), 10_000);
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    s.on('close', () => (clearTimeout(timer), resolve(true)));
  });
}

test('embedded broker: past its connection cap a connection is refused at accept and counted; HTTP keeps answering; a freed slot is used again', async () => {
  const fleet = await startTestFleet('embedded', { broker: { kind: 'embedded', host: '127.0.0.1', port: 0, maxConnections: 4 } });
  fleets.push(fleet);
  const url = fleet.cp.brokerUrl;
  const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 4 } })).body.token as string;
  const ids = ['cap-a', 'cap-b', 'cap-c', 'cap-d'];
  const passwords = new Map<string, string>();
  for (const id of ids) passwords.set(id, (await enrollRaw(url, token, id)).password);
  // the enrollees' connections are gone once the broker has seen them close: wait until three devices are in
  for (const id of ids.slice(0, 3)) {
    clients.push(await waitFor(`${id} connected`, () => connectRaw(url, { clientId: id, username: id, password: passwords.get(id)! }), 20_000, 200));
  }
  assert.equal(await refusedCount(fleet), 0, 'no connection refused below the cap');

  // at the cap: a fourth device and a bare socket are both closed before any byte
  await assert.rejects(connectRaw(url, { clientId: 'cap-d', username: 'cap-d', password: passwords.get('cap-d')! }), /closed|ECONNRESET|EPIPE/);
  assert.equal(await closedAtAccept(url), true, 'a bare socket at the cap is closed at once');
  assert.ok((await refusedCount(fleet)) >= 2, 'every refused connection is counted');
  const health = await fleet.api('/healthz', { auth: null });
  assert.equal(health.status, 200, 'HTTP answers while the broker is at its cap');
  const devices = await fleet.api('/devices?limit=10');
  assert.equal(devices.status, 200);

  // a device leaves: its slot goes to the next one
  clients.shift()!.end(true);
  clients.push(await waitFor('cap-d connected once a slot is free', () => connectRaw(url, { clientId: 'cap-d', username: 'cap-d', password: passwords.get('cap-d')! }), 20_000, 200));
  assert.equal(clients.filter((c) => c.connected).length, 3, 'the three devices in are connected');
});
