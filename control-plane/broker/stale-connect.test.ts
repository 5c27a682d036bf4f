import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isStaleConnect, willStamp } from './stale-connect.ts';

const will = (ts: number, state = 'offline', topic = 'edgefleet/v1/devices/dev-1/status') => ({ topic, payload: Buffer.from(JSON.stringify({ v: 1, state, ts })) });

test("a will's stamp is read only from a device status will that says offline", () => {
  assert.equal(willStamp(will(1700)), 1700);
  assert.equal(willStamp(will(1700, 'online')), null);
  assert.equal(willStamp(will(1700, 'offline', 'edgefleet/v1/devices/dev-1/heartbeat')), null);
  assert.equal(willStamp({ topic: 'edgefleet/v1/devices/dev-1/status', payload: Buffer.from('{not json') }), null);
  assert.equal(willStamp(null), null);
});

test('only a connect stamped older than the live connection is stale; unknown stamps never are', () => {
  assert.equal(isStaleConnect(100, 200), true);
  assert.equal(isStaleConnect(300, 200), false, 'a newer reconnect takes over, as MQTT says');
  assert.equal(isStaleConnect(200, 200), false);
  assert.equal(isStaleConnect(null, 200), false);
  assert.equal(isStaleConnect(100, null), false);
});
