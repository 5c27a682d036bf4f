import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkId, DeviceIdSchema, ModelIdSchema, isValidId } from './ids.ts';

test('ids the project generates pass the rule', () => {
  for (const id of ['dev-0a1b2c3d4e5f', 'sim-raspberry-pi-5-03', 'ro-0123456789', 'dlv-6f1c2a50-6f1c-4a50-8f1c-6f1c2a506f1c', 'job-20261202053811-a1b2c3', '0123456789abcdef0123456789abcdef-262144', 'a1b2c3d4e5f6', 'cnn-x86-64-vnni-ptq', 'model.v2_final']) {
    assert.equal(checkId(id.startsWith('cnn') ? 'model' : 'device', id).ok, true, id);
  }
});

test('the rule refuses traversal, wildcards, case, leading dot/dash, over-long ids', () => {
  for (const id of ['', '.', '..', 'a..b', 'a.', '.hidden', '-x', '_x', 'A', 'Dev-1', 'a/b', 'a+b', 'a#', '$SYS', 'a b', 'é', 'a\0', 'x'.repeat(65)]) {
    assert.equal(isValidId('device', id), false, JSON.stringify(id));
  }
  assert.equal(isValidId('model', 'x'.repeat(128)), true);
  assert.equal(isValidId('model', 'x'.repeat(129)), false);
  assert.equal(isValidId('device', 42), false);
});

test('reserved broker names and prefixes are refused for every kind, with the reason', () => {
  for (const id of ['edgefleet-control-plane', 'edgefleet-device-x', 'edgefleet-enrollee', 'edgefleet-dynsec-1', 'enroll-a1b2c3d4e5f6', 'edgefleet', 'admin', 'con', 'nul.txt', 'com1']) {
    for (const kind of ['device', 'model', 'transfer', 'rollout', 'token'] as const) {
      const r = checkId(kind, id);
      assert.equal(r.ok, false, `${kind} ${id}`);
      if (!r.ok) assert.match(r.error, /reserved/);
    }
  }
  assert.equal(checkId('device', 'ops-admin', { reserved: ['ops-admin'] }).ok, false);
  assert.equal(checkId('device', 'enrolled-1').ok, true, 'only the exact prefix enroll- is reserved');
});

test('zod schemas carry the rule and its message', () => {
  const r = DeviceIdSchema.safeParse('edgefleet-control-plane');
  assert.equal(r.success, false);
  assert.match(JSON.stringify(r.error?.issues), /reserved/);
  assert.equal(ModelIdSchema.safeParse('..').success, false);
  assert.equal(DeviceIdSchema.safeParse('x'.repeat(1_000_000)).success, false);
  assert.equal(DeviceIdSchema.parse('dev-1'), 'dev-1');
});
