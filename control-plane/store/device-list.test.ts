import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openDatabase } from './db.ts';
import { DeviceStore } from './devices.ts';

// GET /devices?status=…|profile=… pages in id order. Without the id in the index SQLite sorted every matching device
// for each page (a temp B-tree): at 10,000 devices a page of one cost 2 ms, and a fleet bench polls it twice a second.

const plan = (db: ReturnType<typeof openDatabase>, sql: string, ...args: unknown[]): string =>
  (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail).join(' | ');

test('a status or profile page walks an index in id order: no sort of the matching devices', () => {
  const db = openDatabase(':memory:');
  for (const [filter, args] of [
    ['status = ?', ['online']],
    ['profile_id = ?', ['generic-cpu']],
    ['profile_id = ? AND status = ?', ['generic-cpu', 'online']],
  ] as const) {
    const p = plan(db, `SELECT * FROM devices WHERE ${filter} ORDER BY id LIMIT ? OFFSET ?`, ...args, 100, 0);
    assert.match(p, /USING INDEX devices_(status|profile)_id/, `${filter}: ${p}`);
    assert.doesNotMatch(p, /TEMP B-TREE/, `${filter}: ${p}`);
  }
});

test('list: pages of a status in id order with the total from the counts, equal to a full scan', () => {
  const db = openDatabase(':memory:');
  const store = new DeviceStore(db);
  const ids: string[] = [];
  for (let i = 0; i < 250; i++) {
    const id = `dl-${String((i * 7919) % 1000).padStart(4, '0')}`;
    store.createEnrolled(id, 'hash', 'tok', 1);
    ids.push(id);
    if (i % 3 !== 0) store.setStatus(id, 'online', 1, 'status', 1);
  }
  const online = ids.filter((_, i) => i % 3 !== 0).sort();
  const seen: string[] = [];
  for (let offset = 0; ; offset += 40) {
    const page = store.list({ status: 'online', limit: 40, offset });
    assert.equal(page.total, online.length);
    if (!page.items.length) break;
    seen.push(...page.items.map((d) => d.id));
  }
  assert.deepEqual(seen, online);
});

// a rollout's candidates and a tuning's canaries came from all(): every device of the fleet read and parsed, for the
// few of one profile. They now come from the profile index: the same devices, in the same (id) order.
test('ofProfiles, hasOnline and onlineOfProfile: what the full list filtered gives, from the profile index', () => {
  const db = openDatabase(':memory:');
  const store = new DeviceStore(db);
  const profiles = ['generic-cpu', 'x86-64-vnni', 'armv82-dotprod', null] as const;
  for (let i = 0; i < 120; i++) {
    const id = `op-${String((i * 37) % 120).padStart(3, '0')}`;
    store.createEnrolled(id, 'h', 't', 1);
    store.update(id, { profileId: profiles[i % 4] ?? null });
    if (i % 3 === 0) store.setStatus(id, 'online', 2, 'test', 2);
    if (i % 10 === 1) store.revoke(id, 3);
  }
  const all = store.all();
  const expect = (ps: string[]) => all.filter((d) => d.revokedAt === null && d.profileId !== null && ps.includes(d.profileId)).map((d) => d.id);
  for (const ps of [['generic-cpu'], ['x86-64-vnni', 'generic-cpu'], ['armv82-dotprod', 'armv82-dotprod'], ['no-such']]) {
    assert.deepEqual(store.ofProfiles(ps).map((d) => d.id), expect(ps), ps.join(','));
  }
  assert.deepEqual(store.ofProfiles(['generic-cpu'])[0], all.find((d) => d.id === expect(['generic-cpu'])[0]), 'whole rows');
  for (const p of ['generic-cpu', 'x86-64-vnni', 'armv82-dotprod']) {
    const online = all.filter((d) => d.profileId === p && d.status === 'online' && d.revokedAt === null).map((d) => d.id);
    assert.ok(online.length > 3, p);
    assert.equal(store.hasOnline(p), true);
    assert.deepEqual(store.onlineOfProfile(p, 3), online.slice(0, 3), p);
    assert.deepEqual(store.onlineOfProfile(p, 1000), online, p);
  }
  store.createEnrolled('op-lonely', 'h', 't', 4);
  store.update('op-lonely', { profileId: 'jetson-orin-trt' });
  assert.equal(store.hasOnline('jetson-orin-trt'), false, 'registered but not online');
  store.setStatus('op-lonely', 'online', 5, 'test', 5);
  assert.equal(store.hasOnline('jetson-orin-trt'), true);
  store.revoke('op-lonely', 6);
  assert.equal(store.hasOnline('jetson-orin-trt'), false, 'revoked');
  for (const sql of ['SELECT * FROM devices WHERE profile_id = ? AND revoked_at IS NULL ORDER BY id', `SELECT id FROM devices WHERE profile_id = ? AND status = 'online' AND revoked_at IS NULL ORDER BY id LIMIT ?`]) {
    const p = plan(db, sql, 'generic-cpu', ...(sql.includes('LIMIT') ? [3] : []));
    assert.match(p, /USING INDEX devices_profile_id \(profile_id=\?\)/, p);
    assert.doesNotMatch(p, /TEMP B-TREE/, p);
  }
});
