import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BoundedMap } from './bounded-map.ts';
import { createLogger } from './log.ts';
import { ThrottledLog } from './throttled-log.ts';

test('BoundedMap never grows past its max and drops the oldest', () => {
  const m = new BoundedMap<string, number>(3);
  for (let i = 0; i < 1000; i++) m.set(`k${i}`, i);
  assert.equal(m.size, 3);
  assert.equal(m.evicted, 997);
  assert.deepEqual([...m.entries()].map(([k]) => k), ['k997', 'k998', 'k999']);
  m.touch('k997');
  m.set('new', 1);
  assert.equal(m.has('k997'), true);
  assert.equal(m.has('k998'), false);
});

test('ThrottledLog: one line per source and reason per interval, with the count left out', () => {
  const lines: Record<string, unknown>[] = [];
  let now = 0;
  const t = new ThrottledLog(createLogger({ sink: (l) => lines.push(JSON.parse(l)) }), { intervalMs: 1000, maxKeys: 100, now: () => now });
  for (let i = 0; i < 500; i++) t.warn('refused', 'dev-a', 'unknown-transfer', { deviceId: 'dev-a' });
  t.warn('refused', 'dev-a', 'not-offered', { deviceId: 'dev-a' });
  t.warn('refused', 'dev-b', 'unknown-transfer', { deviceId: 'dev-b' });
  assert.equal(lines.length, 3);
  assert.equal(t.suppressed, 499);
  now = 1500;
  t.warn('refused', 'dev-a', 'unknown-transfer', { deviceId: 'dev-a' });
  // the 499 left out are reported (by the sweep that runs once the interval is over), then the new one is logged
  assert.equal(lines.filter((l) => l['repeated'] === 499).length, 1);
  assert.equal(lines.length, 5);
  // a source that goes quiet has its count flushed by the sweep
  for (let i = 0; i < 10; i++) t.warn('refused', 'dev-c', 'bad', {});
  now = 5000;
  t.sweep();
  assert.ok(lines.some((l) => l['repeated'] === 9));
  assert.equal(t.keys, 0);
});

test('ThrottledLog keys are bounded under a flood of new sources', () => {
  const t = new ThrottledLog(createLogger({ sink: () => {} }), { intervalMs: 60_000, maxKeys: 1000 });
  for (let i = 0; i < 200_000; i++) t.warn('refused', `dev-${i}`, 'unknown-device');
  assert.ok(t.keys <= 1000);
});
