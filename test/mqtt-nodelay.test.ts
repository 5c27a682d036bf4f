import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { connect, Socket } from 'node:net';
import { after, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { mosquittoConfig } from '../control-plane/broker/mosquitto-config.ts';
import { noDelay } from '../shared/mqtt-nodelay.ts';
import { startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';

// Nagle's algorithm held a small packet sent behind an unacknowledged one until the peer's delayed ACK (40 ms on
// Linux): asks and reports stalled deliveries (README, "Delivery"). Every MQTT socket EdgeFleet owns turns it off.
const fleets: TestFleet[] = [];
after(async () => {
  for (const f of fleets) await f.stop();
});

test('noDelay: the client socket gets TCP_NODELAY now and again on the socket of every reconnect', () => {
  const calls: [string, boolean][] = [];
  const socket = (name: string) => ({ setNoDelay: (on: boolean) => void calls.push([name, on]) });
  const client = Object.assign(new EventEmitter(), { stream: socket('first') });
  assert.equal(noDelay(client as unknown as MqttClient), client);
  assert.deepEqual(calls, [['first', true]]);
  client.stream = socket('after a reconnect');
  client.emit('connect');
  assert.deepEqual(calls, [
    ['first', true],
    ['after a reconnect', true],
  ]);
  // a stream without the method (a WebSocket stream) is left alone
  client.stream = {} as ReturnType<typeof socket>;
  client.emit('connect');
  assert.equal(calls.length, 2);
});

test('embedded broker: every accepted socket gets TCP_NODELAY before any MQTT byte', async () => {
  const fleet = await startTestFleet('embedded');
  fleets.push(fleet);
  const port = Number(new URL(fleet.cp.brokerUrl).port);
  const seen: { localPort: number | undefined; on: boolean }[] = [];
  const original = Socket.prototype.setNoDelay;
  Socket.prototype.setNoDelay = function (this: Socket, on?: boolean) {
    seen.push({ localPort: this.localPort, on: on !== false });
    return original.call(this, on);
  };
  const bare = connect(port, '127.0.0.1');
  try {
    // a bare TCP connection, no MQTT client on this side: only the broker's side can call it
    await waitFor('the broker side set TCP_NODELAY', () => seen.some((s) => s.localPort === port && s.on));
  } finally {
    Socket.prototype.setNoDelay = original;
    bare.destroy();
  }
});

test("Mosquitto's config turns Nagle off for its client sockets", () => {
  const conf = mosquittoConfig({ host: '127.0.0.1', port: 1883, pluginPath: '/p.so', adminUsername: 'a', adminPasswordHash: 'h', stateFile: '/s', persistenceDir: '/d' });
  assert.ok(conf.split('\n').includes('set_tcp_nodelay true'));
});
