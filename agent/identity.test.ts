import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import {
  clearPendingEnrollment,
  generateDevicePassword,
  loadIdentity,
  pendingEnrollmentPassword,
  resolveDeviceId,
  saveIdentity,
  writeFileAtomic,
  type Identity,
} from './identity.ts';

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'ef-id-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const identity = (deviceId: string): Identity => ({
  deviceId,
  password: generateDevicePassword(),
  signingPublicKey: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n',
  enrolledAt: 1_700_000_000_000,
  brokerUrl: 'mqtt://127.0.0.1:1883',
});

test('device password: 32 random bytes as base64url', () => {
  const p = generateDevicePassword();
  assert.match(p, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(p, generateDevicePassword());
});

test('identity: create, reload, file mode 0600, no temp files left', () => {
  const dir = tmp();
  assert.deepEqual(loadIdentity(dir), { ok: true, value: null });
  const id = identity('dev-aaaaaaaaaaaa');
  saveIdentity(dir, id);
  assert.deepEqual(loadIdentity(dir), { ok: true, value: id });
  assert.equal(statSync(join(dir, 'identity.json')).mode & 0o777, 0o600);
  saveIdentity(dir, { ...id, brokerUrl: 'mqtt://other:1883' });
  assert.equal((loadIdentity(dir) as { ok: true; value: Identity }).value.brokerUrl, 'mqtt://other:1883');
  assert.deepEqual(readdirSync(dir), ['identity.json']);
});

test('atomic write replaces whole files and keeps the mode', () => {
  const dir = tmp();
  const f = join(dir, 'x.json');
  writeFileAtomic(f, 'one');
  writeFileAtomic(f, 'two', 0o600);
  assert.equal(readFileSync(f, 'utf8'), 'two');
  assert.equal(statSync(f).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['x.json']);
});

test('a corrupt identity is a clear error naming the file', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'identity.json'), '{"deviceId":"dev-1"');
  const r = loadIdentity(dir);
  assert.ok(!r.ok && r.error.includes('identity.json') && /not valid JSON/.test(r.error));
  writeFileSync(join(dir, 'identity.json'), JSON.stringify({ ...identity('dev-1'), password: 'short' }));
  const r2 = loadIdentity(dir);
  assert.ok(!r2.ok && /password/.test(r2.error));
});

test('device id: generated once and kept; an explicit one is kept; the enrolled id wins', () => {
  const dir = tmp();
  const first = resolveDeviceId(dir);
  assert.ok(first.ok);
  assert.match(first.value, /^dev-[0-9a-f]{12}$/);
  assert.deepEqual(resolveDeviceId(dir), first);

  const other = tmp();
  assert.deepEqual(resolveDeviceId(other, 'pi5-lab-01'), { ok: true, value: 'pi5-lab-01' });
  assert.deepEqual(resolveDeviceId(other), { ok: true, value: 'pi5-lab-01' });

  saveIdentity(other, identity('pi5-lab-01'));
  const conflict = resolveDeviceId(other, 'pi5-lab-02');
  assert.ok(!conflict.ok && /enrolled as "pi5-lab-01"/.test(conflict.error));
  assert.equal(resolveDeviceId(tmp(), 'bad/id').ok, false);
});

test('an unfinished enrollment offers the same password again', () => {
  const dir = tmp();
  const p1 = pendingEnrollmentPassword(dir, 'dev-1');
  assert.equal(pendingEnrollmentPassword(dir, 'dev-1'), p1);
  assert.equal(statSync(join(dir, 'enroll-pending.json')).mode & 0o777, 0o600);
  assert.notEqual(pendingEnrollmentPassword(dir, 'dev-2'), p1);
  clearPendingEnrollment(dir);
  assert.notEqual(pendingEnrollmentPassword(dir, 'dev-2'), p1);
});
