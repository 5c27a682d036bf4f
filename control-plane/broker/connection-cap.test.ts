import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { FD_RESERVE, MIN_CAP, connectionCap, ownOpenFileLimit, parseOpenFileLimit } from './connection-cap.ts';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

test('the soft open-file limit is read from a /proc/<pid>/limits text', () => {
  assert.equal(parseOpenFileLimit(LIMITS), 20_000);
  assert.equal(parseOpenFileLimit(LIMITS.replace('20000                20000', '1024                 524288')), 1024);
  assert.equal(parseOpenFileLimit(LIMITS.replace('20000                20000', 'unlimited            unlimited')), null);
  assert.equal(parseOpenFileLimit('garbage'), null);
  assert.equal(ownOpenFileLimit(() => { throw new Error('no /proc'); }), null);
});

test("this process's own limit is what /proc says (the host's real value)", () => {
  const own = ownOpenFileLimit();
  const text = readFileSync('/proc/self/limits', 'utf8');
  assert.equal(own, parseOpenFileLimit(text));
});

test('the cap keeps a reserve below the limit; a configured cap wins; no limit means no cap', () => {
  assert.deepEqual(connectionCap(undefined, 20_000), { max: 20_000 - FD_RESERVE, source: 'open-file limit', openFileLimit: 20_000 });
  assert.deepEqual(connectionCap(100, 20_000), { max: 100, source: 'configured', openFileLimit: 20_000 });
  assert.equal(connectionCap(undefined, 256).max, MIN_CAP);
  assert.deepEqual(connectionCap(undefined, null), { max: null, source: 'none', openFileLimit: null });
});
