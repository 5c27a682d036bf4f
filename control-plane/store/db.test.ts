import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MIGRATIONS } from './migrations.ts';
import { migrate, migrateRoom, openDatabase, schemaVersion } from './db.ts';
import { DeviceStore } from './devices.ts';
import { TokenStore, tokenUnusableReason } from './tokens.ts';
import { hashSecret, verifySecret } from './secrets.ts';

const tmpDb = () => join(mkdtempSync(join(tmpdir(), 'ef-db-')), 'edgefleet.db');

test('store: migrations bring a new file to the latest version, in WAL mode, and are idempotent', () => {
  const path = tmpDb();
  const db = openDatabase(path);
  assert.equal(schemaVersion(db), MIGRATIONS.length);
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  db.close();
  const again = openDatabase(path);
  assert.equal(schemaVersion(again), MIGRATIONS.length);
  again.close();
});

test('store: a later migration applies on top of existing data without losing it', () => {
  const path = tmpDb();
  const db = openDatabase(path);
  new DeviceStore(db).createEnrolled('d1', 'h', 't', 1);
  migrate(db, [...MIGRATIONS, 'ALTER TABLE devices ADD COLUMN note TEXT']);
  assert.equal(schemaVersion(db), MIGRATIONS.length + 1);
  assert.equal(new DeviceStore(db).get('d1')?.id, 'd1');
  db.close();
});

test('store: a failing migration rolls back and leaves the version where it was', () => {
  const db = openDatabase(':memory:');
  assert.throws(() => migrate(db, [...MIGRATIONS, 'CREATE TABLE x (a); THIS IS NOT SQL']));
  assert.equal(schemaVersion(db), MIGRATIONS.length);
  assert.equal(db.prepare("SELECT name FROM sqlite_master WHERE name = 'x'").get(), undefined);
});

test('store: a database from a newer build is refused, not touched', () => {
  const db = openDatabase(':memory:');
  db.pragma(`user_version = ${MIGRATIONS.length + 5}`);
  assert.throws(() => migrate(db, MIGRATIONS), /newer than this build/);
});

test('store: presence ignores a status older than the one recorded (late will after reconnect)', () => {
  const s = new DeviceStore(openDatabase(':memory:'));
  s.createEnrolled('d1', 'h', 't', 1);
  assert.ok(s.setStatus('d1', 'online', 200, 'birth', 200));
  assert.ok(!s.setStatus('d1', 'offline', 100, 'will', 300), 'older will ignored');
  assert.equal(s.get('d1')?.status, 'online');
  assert.ok(s.setStatus('d1', 'offline', 400, 'will', 400));
  assert.deepEqual(s.statusHistory('d1').map((h) => h.status), ['offline', 'online']);
  assert.ok(s.setStatus('d1', 'online', 'keep', 'heartbeat', 500), 'keep changes state without moving the stamp');
  assert.equal(s.get('d1')?.statusTs, 400);
  assert.ok(s.setStatus('d1', 'offline', 400, 'will of the same connection', 600), 'a will with the stamp of its own online applies');
});

test('store: revoking removes the credential, keeps the row, and blocks presence changes', () => {
  const s = new DeviceStore(openDatabase(':memory:'));
  s.createEnrolled('d1', 'hash', 't', 1);
  assert.equal(s.credentialHash('d1'), 'hash');
  assert.ok(s.revoke('d1', 5));
  assert.equal(s.credentialHash('d1'), null);
  assert.equal(s.get('d1')?.status, 'revoked');
  assert.ok(!s.setStatus('d1', 'online', 10, 'birth', 10));
});

test('store: enrollment tokens expire, run out of uses, and can be revoked', () => {
  const t = new TokenStore(openDatabase(':memory:'));
  t.create({ id: 'tok1', secretHash: 'x', label: '', expiresAt: 1000, maxUses: 2 }, 0);
  assert.ok(t.consume('tok1', 10));
  assert.ok(t.consume('tok1', 10));
  assert.ok(!t.consume('tok1', 10), 'third use refused');
  assert.equal(tokenUnusableReason(t.get('tok1')!, 10), 'enrollment token used up');
  t.create({ id: 'tok2', secretHash: 'x', label: '', expiresAt: 1000, maxUses: null }, 0);
  assert.equal(tokenUnusableReason(t.get('tok2')!, 1000), 'enrollment token expired');
  assert.ok(!t.consume('tok2', 1000));
  t.create({ id: 'tok3', secretHash: 'x', label: '', expiresAt: null, maxUses: null }, 0);
  assert.ok(t.revoke('tok3', 5));
  assert.equal(tokenUnusableReason(t.get('tok3')!, 6), 'enrollment token revoked');
});

test('secrets: salted hashes verify only the right secret; scrypt hashes still verify', async () => {
  const h = hashSecret('correct horse');
  assert.notEqual(h, hashSecret('correct horse'), 'salted');
  assert.ok(await verifySecret('correct horse', h));
  assert.ok(!(await verifySecret('wrong horse', h)));
  assert.ok(!(await verifySecret('x', 'not-a-hash')));
  // scrypt("pw", salt "c2FsdA==" = "salt", N=16, r=1, p=1, 16 bytes)
  const { scryptSync } = await import('node:crypto');
  const legacy = `scrypt$16$1$1$c2FsdA==$${scryptSync('pw', 'salt', 16, { N: 16, r: 1, p: 1 }).toString('base64')}`;
  assert.ok(await verifySecret('pw', legacy));
  assert.ok(!(await verifySecret('pw2', legacy)));
});

test('store: rooms migrate independently and a room from a newer build is refused', () => {
  const db = openDatabase(':memory:');
  migrateRoom(db, 'registry', ['CREATE TABLE models (id TEXT)']);
  migrateRoom(db, 'rollouts', ['CREATE TABLE rollouts (id TEXT)', 'ALTER TABLE rollouts ADD COLUMN state TEXT']);
  migrateRoom(db, 'registry', ['CREATE TABLE models (id TEXT)']);
  const versions = db.prepare('SELECT room, version FROM schema_migrations ORDER BY room').all();
  assert.deepEqual(versions, [{ room: 'registry', version: 1 }, { room: 'rollouts', version: 2 }]);
  assert.throws(() => migrateRoom(db, 'rollouts', ['CREATE TABLE rollouts (id TEXT)']), /newer than this build/);
});
