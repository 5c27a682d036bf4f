import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff, backoffDelay, DEFAULT_BACKOFF } from './backoff.ts';

const top = () => 0.999999; // the top of each window

/** A seeded PRNG (mulberry32) so the spread test is exact on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('the window doubles from 2 s and caps at 30 s', () => {
  const schedule = Array.from({ length: 8 }, (_, i) => backoffDelay(i, DEFAULT_BACKOFF, top));
  assert.deepEqual(schedule, [2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
});

test('full jitter draws from the whole window; partial jitter from its top part', () => {
  assert.equal(backoffDelay(0, DEFAULT_BACKOFF, () => 0), 0);
  assert.equal(backoffDelay(3, DEFAULT_BACKOFF, () => 0.5), 8000);
  const partial = { initialMs: 1000, maxMs: 10_000, factor: 2, jitter: 0.2 };
  assert.equal(backoffDelay(0, partial, () => 0), 800);
  assert.equal(backoffDelay(0, partial, top), 1000);
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(i % 12);
    assert.ok(d >= 0 && d <= 30_000);
  }
});

test('a fleet that loses its broker at once spreads its first reconnects evenly over the window', () => {
  const random = seeded(42);
  const buckets = new Array<number>(10).fill(0);
  const n = 10_000;
  for (let i = 0; i < n; i++) buckets[Math.min(9, Math.floor(backoffDelay(0, DEFAULT_BACKOFF, random) / 200))]!++;
  // uniform: 1,000 per 200 ms bucket; the old ±20 % jitter put all 10,000 into 400-600 ms
  for (const b of buckets) assert.ok(b > 900 && b < 1100, `bucket counts ${buckets.join(',')}`);
});

test('reset after a successful connect starts over', () => {
  const b = new Backoff(DEFAULT_BACKOFF, top);
  assert.deepEqual([b.next(), b.next(), b.next()], [2000, 4000, 8000]);
  b.reset();
  assert.equal(b.next(), 2000);
});
