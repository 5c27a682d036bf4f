import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeEvalSet, parseEvalSet } from '../../shared/evalset.ts';
import type { BenchmarkSettings } from '../../shared/profile.ts';
import { runBenchmark, type EvalSet } from './runner.ts';
import { makeTestModels, type TestModels } from './test-support/make-models.ts';

const SETTINGS: BenchmarkSettings = { threads: 1, warmupQueries: 5, minQueries: 40, minSeconds: 0.3, maxSeconds: 10, throughputBatchSize: 8, profileOps: true };

function evalSet(count: number): EvalSet {
  const pixels = new Uint8Array(count * 3 * 16 * 16);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) % 251;
  return { count, channels: 3, height: 16, width: 16, labels: Uint8Array.from({ length: count }, (_, i) => i % 10), pixels };
}

describe('benchmark runner (onnxruntime CPU in a worker thread)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-bench-'));
  let models: TestModels | null = null;
  before(() => {
    models = makeTestModels(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('fp32 CNN with an eval set: sane single-stream stats, accuracy, agreement, batch throughput, op profile', async (t) => {
    if (!models) return t.skip('/usr/bin/python3 with onnx is not available to build test models');
    // through the shared eval-set file codec, as the set arrives from the control plane
    const decoded = parseEvalSet(encodeEvalSet({ ...evalSet(60), numClasses: 10 }));
    assert.ok(decoded.ok);
    const ev = decoded.value;
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const started = Date.now();
    const out = await runBenchmark({ modelPath: models.cnnFp32, settings: SETTINGS, evalSet: ev, referencePredictions: ev.labels });
    const wallMs = Date.now() - started;
    clearInterval(ticker);
    assert.ok(out.ok, out.ok ? '' : out.error);
    const r = out.value.result;
    const l = r.latencyMs;
    assert.equal(r.runtime, 'onnxruntime-cpu');
    assert.ok(l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
    assert.ok(l.count >= SETTINGS.minQueries && l.count >= ev.count);
    assert.equal(out.value.evaluated, ev.count);
    assert.ok(r.accuracy !== null && r.accuracy >= 0 && r.accuracy <= 1);
    assert.equal(r.agreement, r.accuracy, 'reference = labels, so agreement equals accuracy');
    assert.ok(r.peakRssBytes > 0 && r.fileSizeBytes > 0 && r.sessionCreateMs > 0);
    assert.equal(r.throughputBatchSize, 8, 'batch dimension is dynamic');
    assert.ok(r.throughputPerSecond > 0);
    assert.equal(r.integerKernelShare, 0);
    assert.ok(r.topOps.some((o) => o.op === 'Conv'));
    // the event loop kept ticking while the worker ran (a blocked loop would show a handful of ticks)
    assert.ok(ticks >= (wallMs / 10) * 0.5, `only ${ticks} ticks in ${wallMs} ms`);
  });

  test('integer kernels show up in the kernel share; a fixed batch dimension benchmarks throughput at batch 1', async (t) => {
    if (!models) return t.skip('no test models');
    const out = await runBenchmark({ modelPath: models.matmulInteger, settings: SETTINGS });
    assert.ok(out.ok, out.ok ? '' : out.error);
    assert.equal(out.value.result.throughputBatchSize, 1);
    assert.ok((out.value.result.integerKernelShare ?? 0) > 0.5, JSON.stringify(out.value.result.topOps));
    assert.equal(out.value.result.accuracy, null);
  });

  test('a corrupt or missing model is a clear error, not a crash', async () => {
    const corrupt = join(dir, 'corrupt.onnx');
    writeFileSync(corrupt, Buffer.from('this is not a protobuf at all \x00\x01\x02'));
    const bad = await runBenchmark({ modelPath: corrupt, settings: SETTINGS });
    assert.ok(!bad.ok);
    assert.match(bad.error, /cannot load model .*corrupt\.onnx/);
    const missing = await runBenchmark({ modelPath: join(dir, 'nope.onnx'), settings: SETTINGS });
    assert.ok(!missing.ok && /cannot read model .*nope\.onnx: ENOENT/.test(missing.error));
  });

  test('an eval set that does not fit the model input is refused', async (t) => {
    if (!models) return t.skip('no test models');
    const out = await runBenchmark({ modelPath: models.cnnFp32, settings: SETTINGS, evalSet: { ...evalSet(4), height: 8, width: 8 } });
    assert.ok(!out.ok && /does not fit model input/.test(out.error), out.ok ? '' : out.error);
  });

  test('abort stops the worker; the hard limit terminates it', async (t) => {
    if (!models) return t.skip('no test models');
    const long: BenchmarkSettings = { ...SETTINGS, minSeconds: 30, maxSeconds: 60, profileOps: false };
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 500);
    const t0 = Date.now();
    const stopped = await runBenchmark({ modelPath: models.cnnFp32, settings: long, signal: ac.signal });
    assert.ok(!stopped.ok && /stopped/.test(stopped.error));
    const hard = await runBenchmark({ modelPath: models.cnnFp32, settings: long, hardTimeoutMs: 800 });
    assert.ok(!hard.ok && /hard limit/.test(hard.error));
    assert.ok(Date.now() - t0 < 10_000);
  });

  test('tensorrt runtime: runs trtexec and reads its summary', async () => {
    const fake = join(dir, 'trtexec');
    const fixture = fileURLToPath(new URL('./fixtures/trtexec-8.4.0-jetson-xavier-agx.txt', import.meta.url));
    writeFileSync(fake, `#!/bin/sh\necho "args: $*" >&2\ncat '${fixture}'\n`);
    chmodSync(fake, 0o755);
    const model = join(dir, 'any.onnx');
    writeFileSync(model, 'x');
    const out = await runBenchmark({ modelPath: model, settings: SETTINGS, runtime: 'tensorrt', trtexecPath: fake });
    assert.ok(out.ok, out.ok ? '' : out.error);
    assert.equal(out.value.result.runtime, 'tensorrt');
    assert.equal(out.value.trtexecVersion, '8400');
    assert.equal(out.value.result.latencyMs.p50, 0.401947);
    assert.equal(out.value.result.latencyMs.p90, 0.420288, 'p99 bounds p90 when TensorRT prints no p90');
    assert.equal(out.value.result.throughputPerSecond, 41087.7);

    // a trtexec that also writes --exportTimes: the percentiles come from the trace, through the agent's statistics
    const withTimes = join(dir, 'trtexec-times');
    const times = fileURLToPath(new URL('./fixtures/trtexec-times-8.6-orin.json', import.meta.url));
    writeFileSync(withTimes, `#!/bin/sh\nfor a in "$@"; do case "$a" in --exportTimes=*) cp '${times}' "\${a#--exportTimes=}";; esac; done\ncat '${fixture}'\n`);
    chmodSync(withTimes, 0o755);
    const traced = await runBenchmark({ modelPath: model, settings: SETTINGS, runtime: 'tensorrt', trtexecPath: withTimes });
    assert.ok(traced.ok, traced.ok ? '' : traced.error);
    assert.deepEqual(traced.value.result.latencyMs, { p50: 0.4129, p90: 0.4212, p99: 0.4721, mean: 0.4142, min: 0.396, max: 0.5005, count: 400 });
    assert.ok(Math.abs(traced.value.result.throughputPerSecond - 400 / 0.17337) < 0.01, 'queries over the trace walltime');

    const failing = join(dir, 'trtexec-fail');
    writeFileSync(failing, '#!/bin/sh\necho "&&&& FAILED TensorRT.trtexec [TensorRT v8601] # trtexec --onnx=x"\nexit 1\n');
    chmodSync(failing, 0o755);
    const bad = await runBenchmark({ modelPath: model, settings: SETTINGS, runtime: 'tensorrt', trtexecPath: failing });
    assert.ok(!bad.ok && /trtexec exited with code 1/.test(bad.error));
  });

  test('tensorrt without trtexec falls back to onnxruntime CPU', async (t) => {
    if (!models) return t.skip('no test models');
    const out = await runBenchmark({ modelPath: models.matmulInteger, settings: { ...SETTINGS, profileOps: false }, runtime: 'tensorrt', trtexecPath: null });
    assert.ok(out.ok && out.value.result.runtime === 'onnxruntime-cpu');
  });
});
