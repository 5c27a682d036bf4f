import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agreement, argmaxRows, encodeEvalSet, evalSetBatch, parseEvalSet, type EvalSet } from './evalset.ts';

const sample: EvalSet = {
  count: 2,
  channels: 1,
  height: 2,
  width: 3,
  numClasses: 10,
  labels: Uint8Array.from([3, 9]),
  pixels: Uint8Array.from([0, 1, 2, 3, 4, 5, 255, 254, 253, 252, 251, 250]),
};

test('encode then parse round-trips, little-endian header', () => {
  const bytes = encodeEvalSet(sample);
  assert.equal(bytes.length, 28 + 2 + 12);
  assert.equal(String.fromCharCode(...bytes.subarray(0, 4)), 'EFEV');
  assert.deepEqual([...bytes.subarray(4, 8)], [1, 0, 0, 0]);
  assert.deepEqual([...bytes.subarray(8, 12)], [2, 0, 0, 0]);
  const r = parseEvalSet(bytes);
  assert.ok(r.ok);
  assert.equal(r.value.count, 2);
  assert.equal(r.value.width, 3);
  assert.deepEqual([...r.value.labels], [3, 9]);
  assert.deepEqual([...r.value.pixels], [...sample.pixels]);
});

test('parses from a Buffer slice with a non-zero byteOffset', () => {
  const bytes = encodeEvalSet(sample);
  const big = Buffer.alloc(bytes.length + 7);
  big.set(bytes, 7);
  const r = parseEvalSet(big.subarray(7));
  assert.ok(r.ok);
  assert.equal(r.value.numClasses, 10);
});

test('rejects bad magic, version, length and labels', () => {
  const good = encodeEvalSet(sample);
  const badMagic = good.slice();
  badMagic[0] = 0x58;
  assert.match(failure(badMagic), /magic/);
  const badVersion = good.slice();
  badVersion[4] = 2;
  assert.match(failure(badVersion), /version 2/);
  assert.match(failure(good.subarray(0, good.length - 1)), /bytes/);
  assert.match(failure(good.subarray(0, 10)), /truncated/);
  const badLabel = good.slice();
  badLabel[28] = 10;
  assert.match(failure(badLabel), /label 10/);
});

test('batch is pixels / 255 as float32', () => {
  const b = evalSetBatch(sample, 1, 5);
  assert.equal(b.length, 6);
  assert.equal(b[0], 1);
  assert.ok(Math.abs(b[5]! - 250 / 255) < 1e-7);
});

test('argmax and agreement', () => {
  const p = argmaxRows(Float32Array.from([0, 2, 1, 5, -1, 4]), 3);
  assert.deepEqual([...p], [1, 0]);
  assert.equal(agreement(Uint8Array.from([1, 2, 3, 4]), Uint8Array.from([1, 2, 0, 4])), 0.75);
  assert.throws(() => agreement(new Uint8Array(1), new Uint8Array(2)));
});

function failure(bytes: Uint8Array): string {
  const r = parseEvalSet(bytes);
  assert.equal(r.ok, false);
  return r.ok ? '' : r.error;
}
