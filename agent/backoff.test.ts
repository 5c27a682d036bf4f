import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff, backoffDelay, DEFAULT_BACKOFF } from './backoff.ts';

const mid = () => 0.5; // no jitter

test('doubles from 0.5 s and caps at 30 s', () => {
  const schedule = Array.from({ length: 10 }, (_, i) => backoffDelay(i, DEFAULT_BACKOFF, mid));
  assert.deepEqual(schedule, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
});

test('jitter stays within ±20 % and never above the cap', () => {
  assert.equal(backoffDelay(0, DEFAULT_BACKOFF, () => 0), 400);
  assert.equal(backoffDelay(0, DEFAULT_BACKOFF, () => 0.999999), 600);
  assert.equal(backoffDelay(20, DEFAULT_BACKOFF, () => 0.999999), 30000);
  assert.equal(backoffDelay(20, DEFAULT_BACKOFF, () => 0), 24000);
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(i % 12);
    assert.ok(d >= 400 && d <= 30000);
  }
});

test('reset after a successful connect starts over', () => {
  const b = new Backoff(DEFAULT_BACKOFF, mid);
  assert.deepEqual([b.next(), b.next(), b.next()], [500, 1000, 2000]);
  b.reset();
  assert.equal(b.next(), 500);
});
