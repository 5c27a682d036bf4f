import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseTrtexecOutput } from './trtexec.ts';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

test('TensorRT 8.4.0 on a Jetson Xavier AGX: p99 only, version, walltime, GPU compute', () => {
  const r = parseTrtexecOutput(fixture('trtexec-8.4.0-jetson-xavier-agx.txt'));
  assert.ok(r.ok);
  assert.deepEqual(r.value, {
    version: '8400',
    throughputQps: 41087.7,
    latencyMs: { min: 0.387207, max: 0.447357, mean: 0.402238, median: 0.401947, p90: null, p95: null, p99: 0.420288 },
    gpuComputeMeanMs: 0.388221,
    queries: null,
    walltimeSeconds: 3.00119,
  });
});

test('TensorRT 8.6.3: percentiles 90/95/99', () => {
  const r = parseTrtexecOutput(fixture('trtexec-8.6.3-rtx4090.txt'));
  assert.ok(r.ok);
  assert.equal(r.value.throughputQps, 72.047);
  assert.deepEqual(r.value.latencyMs, { min: 14.4292, max: 14.6636, mean: 14.462, median: 14.4604, p90: 14.4785, p95: 14.4811, p99: 14.4929 });
  assert.equal(r.value.version, null);
});

test('TensorRT 7.x: "End-to-End Host Latency" is not mistaken for "Latency"', () => {
  const r = parseTrtexecOutput(fixture('trtexec-7.x-gtx1080ti.txt'));
  assert.ok(r.ok);
  assert.equal(r.value.latencyMs.min, 634.644);
  assert.equal(r.value.latencyMs.p99, 638.123);
});

test('H2D Latency alone is not a summary; a FAILED run says so', () => {
  const onlyH2d = '[I] H2D Latency: min = 0.1 ms, max = 0.2 ms, mean = 0.1 ms, median = 0.1 ms\n[I] Throughput: 5 qps\n';
  assert.equal(parseTrtexecOutput(onlyH2d).ok, false);
  const failed = parseTrtexecOutput('[E] Error[4]: bad\n&&&& FAILED TensorRT.trtexec [TensorRT v100200] # trtexec --onnx=x.onnx\n');
  assert.ok(!failed.ok && /FAILED TensorRT\.trtexec/.test(failed.error));
});
