import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FanoutWave } from './fanout-wave.ts';
import { FrameCache } from './frame-cache.ts';

test('a wave publishes each chunk once; devices that joined before a publish are skipped, later joiners get it alone', () => {
  const w = new FanoutWave('t', 0);
  assert.deepEqual(w.plan('a', [0, 1, 2], 'join', 1), { broadcast: [0, 1, 2], unicast: [], skipped: [] });
  // b joins while 0..2 are pending: they will reach it too
  assert.deepEqual(w.plan('b', [0, 1, 2, 3], 'join', 2), { broadcast: [3], unicast: [], skipped: [0, 1, 2] });
  for (const i of [0, 1, 2, 3]) w.publishing(i);
  // a's next ask: published after a joined, so a has them or will
  assert.deepEqual(w.plan('a', [3, 4], 'next', 3), { broadcast: [4], unicast: [], skipped: [3] });
  // c joins after 0..3 went out: those go to c alone; 4 is still pending
  assert.deepEqual(w.plan('c', [0, 1, 2, 3, 4], 'join', 4), { broadcast: [], unicast: [0, 1, 2, 3], skipped: [4] });
  assert.equal(w.chunksPublished, 4);
  assert.equal(w.devices, 3);
});

test('a repair gets published chunks alone, never pending ones; a rejoin (new connection) resets the device clock', () => {
  const w = new FanoutWave('t', 0);
  w.plan('a', [0, 1], 'join', 1);
  w.publishing(0);
  assert.deepEqual(w.plan('a', [0, 1], 'repair', 2), { broadcast: [], unicast: [0], skipped: [1] });
  w.publishing(1);
  assert.deepEqual(w.plan('a', [1], 'next', 3), { broadcast: [], unicast: [], skipped: [1] });
  assert.deepEqual(w.plan('a', [1], 'join', 4), { broadcast: [], unicast: [1], skipped: [] });
});

test('a failed publish is forgotten: the next fresh ask broadcasts it again', () => {
  const w = new FanoutWave('t', 0);
  w.plan('a', [0], 'join', 1);
  w.publishing(0);
  w.failed(0);
  assert.deepEqual(w.plan('b', [0], 'join', 2), { broadcast: [0], unicast: [], skipped: [] });
  assert.equal(w.lastActivity, 2);
});

test('the frame cache keeps the most recently used frames within its byte bound', () => {
  const c = new FrameCache(10);
  c.put('t', 0, Buffer.alloc(4));
  c.put('t', 1, Buffer.alloc(4));
  assert.ok(c.get('t', 0)); // 0 is now the most recent
  c.put('u', 0, Buffer.alloc(4));
  assert.equal(c.get('t', 1), undefined, 'least recently used went first');
  assert.ok(c.get('t', 0));
  assert.equal(c.size, 8);
  c.dropTransfer('t');
  assert.equal(c.size, 4);
  assert.equal(c.put('t', 9, Buffer.alloc(11)).length, 11, 'a frame over the bound is served, not kept');
  assert.equal(c.get('t', 9), undefined);
});
