import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openDatabase } from './db.ts';
import { DeviceStore, STALE_ONLINE_SQL } from './devices.ts';

// presence() runs for every inbound MQTT message: it answers from memory after the first read, and every write of
// what it returns (enrolment, revocation, a profile override) is seen by the next call.

test('presence: read from SQLite once, then from memory; unknown devices are not kept', () => {
  const store = new DeviceStore(openDatabase(':memory:'));
  store.createEnrolled('pc-1', 'hash', 'tok', 1);
  assert.deepEqual(store.presence('pc-1'), { revokedAt: null, profileOverride: null });
  assert.equal(store.presenceReads, 1);
  for (let i = 0; i < 5; i++) store.presence('pc-1');
  assert.equal(store.presenceReads, 1);
  assert.equal(store.presence('nobody'), null);
  assert.equal(store.presence('nobody'), null);
  assert.equal(store.presenceReads, 3);
  // heartbeats and presence changes do not touch it
  store.setStatus('pc-1', 'online', 5, 'status', 5);
  store.presence('pc-1');
  assert.equal(store.presenceReads, 3);
});

test('presence: a revocation, a profile override and a re-enrolment are seen by the very next call', () => {
  const store = new DeviceStore(openDatabase(':memory:'));
  store.createEnrolled('pc-2', 'hash', 'tok', 1);
  store.presence('pc-2');
  store.update('pc-2', { profileOverride: 'generic-cpu' });
  assert.deepEqual(store.presence('pc-2'), { revokedAt: null, profileOverride: 'generic-cpu' });
  store.update('pc-2', { labels: { site: 'a' } });
  assert.deepEqual(store.presence('pc-2'), { revokedAt: null, profileOverride: 'generic-cpu' });
  assert.equal(store.revoke('pc-2', 42), true);
  assert.deepEqual(store.presence('pc-2'), { revokedAt: 42, profileOverride: 'generic-cpu' });
  store.createEnrolled('pc-2', 'hash2', 'tok2', 50);
  assert.deepEqual(store.presence('pc-2'), { revokedAt: null, profileOverride: 'generic-cpu' });
  // what a caller gets cannot be changed under the cache
  assert.throws(() => ((store.presence('pc-2') as { revokedAt: number | null }).revokedAt = 1));
});

test('presence: a write that rolls back leaves the committed state, not what it had written', () => {
  const db = openDatabase(':memory:');
  const store = new DeviceStore(db);
  store.createEnrolled('pc-3', 'hash', 'tok', 1);
  store.presence('pc-3');
  assert.throws(() =>
    db.transaction(() => {
      store.revoke('pc-3', 7);
      // read inside the transaction: sees the uncommitted revocation, must not keep it
      assert.equal(store.presence('pc-3')?.revokedAt, 7);
      throw new Error('roll back');
    })(),
  );
  assert.deepEqual(store.presence('pc-3'), { revokedAt: null, profileOverride: null });
});

// the missed-heartbeat sweep runs every few seconds: it must find exactly the silent online devices, from the
// last-seen index (not a walk over every online device)
test('staleOnline: the online devices silent since the cut-off or never seen; from the last-seen index', () => {
  const db = openDatabase(':memory:');
  const store = new DeviceStore(db);
  const set = db.prepare('UPDATE devices SET status = ?, last_seen = ? WHERE id = ?');
  const rows: [string, string, number | null][] = [
    ['quiet', 'online', 100],
    ['never-seen', 'online', null],
    ['recent', 'online', 5_000],
    ['at-cutoff', 'online', 1_000],
    ['offline-quiet', 'offline', 100],
    ['unknown-never', 'unknown', null],
  ];
  for (const [id, status, seen] of rows) {
    store.createEnrolled(id, 'h', 't', 1);
    set.run(status, seen, id);
  }
  store.createEnrolled('revoked-quiet', 'h', 't', 1);
  set.run('online', 100, 'revoked-quiet');
  store.revoke('revoked-quiet', 2);
  assert.deepEqual(store.staleOnline(1_000).sort(), ['never-seen', 'quiet']);
  assert.deepEqual(store.staleOnline(1_001).sort(), ['at-cutoff', 'never-seen', 'quiet']);
  const plan = (db.prepare(`EXPLAIN QUERY PLAN ${STALE_ONLINE_SQL}`).all(1_000) as { detail: string }[]).map((r) => r.detail).join(' | ');
  assert.match(plan, /SEARCH devices USING INDEX devices_last_seen \(last_seen<\?\).*SEARCH devices USING INDEX devices_last_seen \(last_seen=\?\)/, plan);
  assert.doesNotMatch(plan, /devices_status/, plan);
});
