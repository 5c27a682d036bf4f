import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseTrtexecOutput } from './trtexec.ts';
import { parseTrtexecTimes } from './trtexec-times.ts';

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

test('exportTimes (TensorRT 8.6 layout, warm-ups not written): percentiles through the agent\'s own statistics', () => {
  const r = parseTrtexecTimes(fixture('trtexec-times-8.6-orin.json'), 1000);
  assert.ok(r.ok, r.ok ? '' : r.error);
  // nearest-rank statistics of the fixture's 400 latencyMs values as make-trtexec-times.py computed them
  // (p50 0.412885, p90 0.421219, p99 0.472119, min 0.396021, max 0.500514), to the agent's 0.1 µs rounding
  assert.deepEqual(r.value.latencyMs, { p50: 0.4129, p90: 0.4212, p99: 0.4721, mean: 0.4142, min: 0.396, max: 0.5005, count: 400 });
  assert.equal(r.value.queries, 400);
  assert.equal(r.value.warmupQueries, 0);
  assert.ok(Math.abs(r.value.walltimeSeconds - 0.17337) < 1e-6, String(r.value.walltimeSeconds));
  assert.ok(r.value.gpuComputeMs.p50 < r.value.latencyMs.p50, 'GPU compute is part of the latency');
});

test('exportTimes (TensorRT 8.2 layout, warm-ups written first, endToEndMs): warm-ups are left out by trtexec\'s rule', () => {
  const r = parseTrtexecTimes(fixture('trtexec-times-8.2-xavier.json'), 200);
  assert.ok(r.ok, r.ok ? '' : r.error);
  // p50 0.413502, p90 0.422286, p99 0.454723, min 0.394827, max 0.481258 over the 319 timed queries
  assert.deepEqual(r.value.latencyMs, { p50: 0.4135, p90: 0.4223, p99: 0.4547, mean: 0.414, min: 0.3948, max: 0.4813, count: 319 });
  assert.equal(r.value.warmupQueries, 780 - 319);
  assert.ok(Math.abs(r.value.walltimeSeconds - 0.138248) < 1e-6);
});

test('exportTimes: bad files are refused with the reason (the text summary is the fallback)', () => {
  assert.match((parseTrtexecTimes('[{"startComputeMs": 1', 0) as { error: string }).error, /not JSON/);
  assert.match((parseTrtexecTimes('{"a": 1}', 0) as { error: string }).error, /expected array/);
  assert.match((parseTrtexecTimes('[{"startComputeMs": 1, "endComputeMs": 2, "computeMs": 1, "latencyMs": -3}]', 0) as { error: string }).error, /0\.latencyMs/);
  assert.match((parseTrtexecTimes('[{"startComputeMs": 1, "endComputeMs": 2, "computeMs": 1, "latencyMs": 1.2}]', 5000) as { error: string }).error, /no query after the 5000 ms warm-up/);
  assert.match((parseTrtexecTimes('[]', 0) as { error: string }).error, /no query after/);
});
