import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Heartbeat } from '../../shared/messages.ts';
import { migrateRoom, openDatabase } from './db.ts';
import { HEARTBEAT_HISTORY_MIGRATIONS, HeartbeatHistory } from './heartbeat-history.ts';

const hb = (load1: number, temperatureC: number | null = 40): Heartbeat => ({
  v: 1, msgId: `m-${Math.random()}`, ts: 0, type: 'heartbeat', agentVersion: '1', uptimeSeconds: 1, load1, cpuPercent: 10, memUsedBytes: 100, memTotalBytes: 400, temperatureC, activeModel: null,
});

function store(opts: { bucketMs: number; slots: number; flushMs?: number }) {
  const db = openDatabase(':memory:');
  migrateRoom(db, 'heartbeat-history', HEARTBEAT_HISTORY_MIGRATIONS);
  return { db, h: new HeartbeatHistory(db, opts) };
}

test('one point per bucket per device, oldest first', () => {
  const { h } = store({ bucketMs: 1000, slots: 10 });
  assert.equal(h.record('a', hb(1), 1000), true);
  assert.equal(h.record('a', hb(2), 1500), false, 'same bucket: not written');
  assert.equal(h.record('a', hb(3), 2100), true);
  assert.equal(h.record('b', hb(9), 2100), true);
  assert.deepEqual(h.recent('a', 3000).map((p) => [p.at, p.load1]), [[1000, 1], [2100, 3]]);
  assert.equal(h.recent('b', 3000).length, 1);
});

test('the ring is bounded: rows per device never exceed the slots, the window shows the newest', () => {
  const { db, h } = store({ bucketMs: 1000, slots: 5 });
  for (let t = 0; t < 40; t++) h.record('a', hb(t, t % 3 === 0 ? null : 50 + t), t * 1000);
  h.flush();
  const rows = (db.prepare('SELECT COUNT(*) AS n FROM device_heartbeat_history WHERE device_id = ?').get('a') as { n: number }).n;
  assert.equal(rows, 5);
  const points = h.recent('a', 39_000);
  assert.deepEqual(points.map((p) => p.load1), [35, 36, 37, 38, 39]);
  assert.equal(points[1]!.temperatureC, null, 'a device without a sensor stays null');
  h.forget('a');
  assert.equal(h.recent('a', 39_000).length, 0);
});

test('points are written in one batch at most flushMs later, without a read asking', async () => {
  const { db, h } = store({ bucketMs: 1000, slots: 10, flushMs: 20 });
  h.record('a', hb(1), 1000);
  h.record('b', hb(2), 1000);
  const count = () => (db.prepare('SELECT COUNT(*) AS n FROM device_heartbeat_history').get() as { n: number }).n;
  assert.equal(count(), 0, 'not yet written');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(count(), 2);
});

test('recordNow writes inside the caller\'s transaction, still one point per bucket', () => {
  const { db, h } = store({ bucketMs: 1000, slots: 10 });
  const count = () => (db.prepare('SELECT COUNT(*) AS n FROM device_heartbeat_history').get() as { n: number }).n;
  db.transaction(() => {
    assert.equal(h.recordNow('a', hb(1), 1000), true);
    assert.equal(h.recordNow('a', hb(2), 1200), false);
    assert.equal(h.recordNow('b', hb(3), 1200), true);
  })();
  assert.equal(count(), 2);
});
