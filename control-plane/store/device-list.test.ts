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
