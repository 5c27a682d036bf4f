import assert from 'node:assert/strict';
import { test } from 'node:test';
import { intakeCommand, newCounters, commandModel } from './commands.ts';
import { MsgIdDedup } from '../shared/dedup.ts';

const cmd = (msgId: string, body: Record<string, unknown> = { cmd: 'rebirth' }): string => JSON.stringify({ v: 1, msgId, ts: 1, ...body });

test('dedup: first time true, repeats false, oldest forgotten past capacity', () => {
  const d = new MsgIdDedup(3);
  assert.equal(d.firstTime('a'), true);
  assert.equal(d.firstTime('a'), false);
  d.firstTime('b');
  d.firstTime('c');
  d.firstTime('d'); // evicts a
  assert.equal(d.size, 3);
  assert.equal(d.firstTime('a'), true);
  assert.equal(d.firstTime('d'), false);
});

test('intake counts invalid and duplicate commands and never throws', () => {
  const counters = newCounters();
  const dedup = new MsgIdDedup();
  assert.equal(intakeCommand(cmd('msg-00000001'), dedup, counters).kind, 'accepted');
  assert.equal(intakeCommand(cmd('msg-00000001'), dedup, counters).kind, 'duplicate');
  const notJson = intakeCommand('{', dedup, counters);
  assert.deepEqual(notJson, { kind: 'invalid', reason: 'payload is not valid JSON' });
  const unknown = intakeCommand(cmd('msg-00000002', { cmd: 'format-disk' }), dedup, counters);
  assert.ok(unknown.kind === 'invalid' && unknown.reason.includes('cmd'));
  const badVersion = intakeCommand(JSON.stringify({ v: 2, msgId: 'msg-00000003', ts: 1, cmd: 'rebirth' }), dedup, counters);
  assert.ok(badVersion.kind === 'invalid' && badVersion.reason.startsWith('v:'));
  assert.equal(intakeCommand(new Uint8Array([0xff, 0xfe]), dedup, counters).kind, 'invalid');
  assert.deepEqual(
    { r: counters.commandsReceived, i: counters.commandsInvalid, d: counters.commandsDuplicate },
    { r: 6, i: 4, d: 1 },
  );
});

test('the model a command concerns', () => {
  const active = { modelId: 'cur', version: 2 };
  assert.deepEqual(commandModel({ v: 1, msgId: 'x'.repeat(8), ts: 1, cmd: 'benchmark', model: { modelId: 'm', version: 1 } }, active), { modelId: 'm', version: 1 });
  assert.deepEqual(commandModel({ v: 1, msgId: 'x'.repeat(8), ts: 1, cmd: 'rollback', rolloutId: null, to: null }, active), active);
  assert.equal(commandModel({ v: 1, msgId: 'x'.repeat(8), ts: 1, cmd: 'rebirth' }, active), null);
});
