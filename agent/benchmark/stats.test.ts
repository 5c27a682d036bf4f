import assert from 'node:assert/strict';
import { test } from 'node:test';
import { summarizeOrtProfile } from './op-profile.ts';
import { argmax, latencyStats, percentile } from './stats.ts';

test('nearest-rank percentiles', () => {
  const s = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(s, 50), 50);
  assert.equal(percentile(s, 90), 90);
  assert.equal(percentile(s, 99), 99);
  assert.equal(percentile([7], 99), 7);
  assert.equal(percentile([], 50), 0);
});

test('latency stats are ordered and count every sample', () => {
  const st = latencyStats([5, 1, 3, 2, 4, 100]);
  assert.deepEqual(st, { p50: 3, p90: 100, p99: 100, mean: 19.1667, min: 1, max: 100, count: 6 });
});

test('argmax', () => {
  assert.equal(argmax(Float32Array.from([0.1, 3, -2, 2.9])), 1);
  assert.equal(argmax([0, 0, 5, 1, 9], 2, 2), 0);
});

test('op profile: kernel_time events only, Q/DQ are not integer compute', () => {
  const ev = (op: string, dur: number, suffix = 'kernel_time') => ({ cat: 'Node', name: `${op}_1_${suffix}`, dur, args: { op_name: op } });
  const trace = [
    { cat: 'Session', name: 'model_run', dur: 1000 },
    ev('QLinearConv', 600),
    ev('QLinearConv', 9999, 'fence_before'),
    ev('QuantizeLinear', 100),
    ev('DequantizeLinear', 100),
    ev('Gemm', 200),
  ];
  const p = summarizeOrtProfile(trace);
  assert.equal(p.integerKernelShare, 0.6);
  assert.deepEqual(p.topOps[0], { op: 'QLinearConv', ms: 0.6, share: 0.6 });
  assert.equal(p.topOps.length, 4);
  assert.deepEqual(summarizeOrtProfile({}), { integerKernelShare: null, topOps: [], totalKernelMs: 0 });
});
