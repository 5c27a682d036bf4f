import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { ortSessionOptions } from '../../shared/ort-session.ts';
import { hostKernelFacts } from './host-kernels.ts';
import { summarizeOrtProfile } from './op-profile.ts';
import { argmax, latencyStats } from './stats.ts';
import type { ControlMessage, Phase, WorkerMessage, WorkerRequest, WorkerResult } from './types.ts';

/**
 * Runs in a child process: inference never blocks the agent's MQTT event loop, and a benchmark that
 * must be cut short can be killed without taking the agent with it (terminating a worker thread in
 * the middle of an onnxruntime run aborts the whole process).
 */
if (!process.send) throw new Error('agent/benchmark/worker.ts must run as a forked child process');
const send = process.send.bind(process);

let stopRequested = false;
let started = false;
process.on('message', (m: ControlMessage | { type: 'run'; request: WorkerRequest }) => {
  if (m.type === 'stop') stopRequested = true;
  else if (m.type === 'run' && !started) {
    started = true;
    run(m.request).then(
      (result) => post({ type: 'result', result }),
      (e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }),
    );
  }
});
// the parent going away (agent killed) ends the benchmark too
process.on('disconnect', () => process.exit(0));
const post = (m: WorkerMessage): void => void send(m);
const progress = (phase: Phase, queries: number): void => post({ type: 'progress', phase, queries });

class StopRequested extends Error {}
const checkStop = (): void => {
  if (stopRequested) throw new StopRequested('benchmark stopped');
};

let peakRss = process.memoryUsage.rss();
const sampleRss = (): void => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
};

type Feeds = Record<string, ort.Tensor>;

/** Read once: whether this CPU needs onnxruntime's U8U8 remedy (shared/ort-session.ts). */
const KERNELS = hostKernelFacts();

async function createSession(req: WorkerRequest, profile: boolean): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(req.modelPath, {
      ...ortSessionOptions(req.settings.threads, KERNELS),
      ...(profile ? { enableProfiling: true, profileFilePrefix: join(req.profileDir, 'ort-profile') } : {}),
    });
  } catch (e) {
    throw new Error(`cannot load model ${req.modelPath}: ${(e as Error).message}`);
  }
}

type InputPlan = { name: string; output: string; sampleShape: number[]; batchDynamic: boolean; sampleSize: number };

function planInput(session: ort.InferenceSession, req: WorkerRequest): InputPlan {
  const meta = session.inputMetadata[0];
  const output = session.outputNames[0];
  if (!meta || !output) throw new Error('model has no inputs or no outputs');
  if (session.inputNames.length !== 1) throw new Error(`model has ${session.inputNames.length} inputs; the benchmark feeds exactly one`);
  if (!meta.isTensor || meta.type !== 'float32') throw new Error(`model input "${meta.name}" is ${meta.isTensor ? meta.type : 'not a tensor'}; expected float32`);
  const dims = [...meta.shape];
  const batchDynamic = typeof dims[0] !== 'number' || dims[0] < 0;
  const given = req.evalSet ? [1, req.evalSet.channels, req.evalSet.height, req.evalSet.width] : req.inputShape;
  const shape = dims.map((d, i) => {
    if (i === 0) return 1;
    const g = given?.[i];
    if (typeof d === 'number' && d > 0) {
      if (req.evalSet && g !== undefined && g !== d) throw new Error(`eval set shape ${given?.join('x')} does not fit model input ${dims.join('x')}`);
      return d;
    }
    if (g === undefined || g <= 0) throw new Error(`model input dimension ${i} is symbolic ("${String(d)}"); give inputShape`);
    return g;
  });
  if (req.evalSet && shape.length !== 4) throw new Error(`eval set is NCHW but model input has rank ${shape.length}`);
  return { name: meta.name, output, sampleShape: shape, batchDynamic, sampleSize: shape.reduce((a, b) => a * b, 1) };
}

/** Sample i of the eval set as float32 (pixels / 255), or the fixed random input. */
function sampleData(req: WorkerRequest, plan: InputPlan, random: Float32Array, i: number, into: Float32Array, offset = 0): void {
  const ev = req.evalSet;
  if (!ev) {
    into.set(random, offset);
    return;
  }
  const n = plan.sampleSize;
  const src = ev.pixels.subarray((i % ev.count) * n, (i % ev.count) * n + n);
  for (let k = 0; k < n; k++) into[offset + k] = (src[k] ?? 0) / 255;
}

async function run(req: WorkerRequest): Promise<WorkerResult> {
  const { settings } = req;
  const started = performance.now();
  const elapsedS = (): number => (performance.now() - started) / 1000;
  const fileSizeBytes = statSync(req.modelPath).size;

  progress('load', 0);
  const t0 = performance.now();
  const session = await createSession(req, false);
  const sessionCreateMs = performance.now() - t0;
  sampleRss();
  const plan = planInput(session, req);
  const ev = req.evalSet;
  if (ev && (ev.labels.length < ev.count || ev.pixels.length < ev.count * plan.sampleSize)) throw new Error('eval set is shorter than its count says');
  const random = Float32Array.from({ length: plan.sampleSize }, () => Math.random());
  const input = new Float32Array(plan.sampleSize);
  const feeds: Feeds = { [plan.name]: new ort.Tensor('float32', input, plan.sampleShape) };

  progress('warmup', 0);
  for (let i = 0; i < settings.warmupQueries && elapsedS() < settings.maxSeconds; i++) {
    checkStop();
    sampleData(req, plan, random, i, input);
    await session.run(feeds);
  }

  // MLPerf single stream: one query at a time, the next when the last is answered
  progress('latency', 0);
  const latencies: number[] = [];
  let correct = 0;
  let agreeing = 0;
  let evaluated = 0;
  const latencyStart = performance.now();
  const wantSamples = ev ? ev.count : 0;
  for (let i = 0; ; i++) {
    const spent = (performance.now() - latencyStart) / 1000;
    if (elapsedS() >= settings.maxSeconds) break;
    if (i >= settings.minQueries && spent >= settings.minSeconds && i >= wantSamples) break;
    checkStop();
    sampleData(req, plan, random, i, input);
    const q = performance.now();
    const out = await session.run(feeds);
    latencies.push(performance.now() - q);
    if (ev && i < ev.count) {
      const logits = out[plan.output]?.data as Float32Array | undefined;
      if (logits) {
        const pred = argmax(logits);
        evaluated++;
        if (pred === ev.labels[i]) correct++;
        if (req.referencePredictions && pred === req.referencePredictions[i]) agreeing++;
      }
    }
    if (i % 8 === 0) sampleRss();
    if (i % 50 === 0) progress('latency', i);
  }
  sampleRss();

  progress('throughput', 0);
  const batch = plan.batchDynamic ? settings.throughputBatchSize : 1;
  const batchInput = new Float32Array(plan.sampleSize * batch);
  for (let b = 0; b < batch; b++) sampleData(req, plan, random, b, batchInput, b * plan.sampleSize);
  const batchFeeds: Feeds = { [plan.name]: new ort.Tensor('float32', batchInput, [batch, ...plan.sampleShape.slice(1)]) };
  const budgetS = Math.min(2, Math.max(0.2, settings.maxSeconds - elapsedS()));
  let batches = 0;
  const tp0 = performance.now();
  while (batches < 3 || (performance.now() - tp0) / 1000 < budgetS) {
    checkStop();
    await session.run(batchFeeds);
    batches++;
    sampleRss();
    if (batches >= 3 && elapsedS() >= settings.maxSeconds) break;
  }
  const throughputPerSecond = (batches * batch) / ((performance.now() - tp0) / 1000);
  await session.release();

  let integerKernelShare: number | null = null;
  let topOps: WorkerResult['topOps'] = [];
  if (settings.profileOps) {
    // a separate session: the profiler's own overhead must not land in the latency numbers
    progress('profile', 0);
    const prof = await createSession(req, true);
    const profStart = performance.now();
    for (let i = 0; i < Math.min(50, Math.max(10, settings.minQueries)) && performance.now() - profStart < 5000; i++) {
      checkStop();
      sampleData(req, plan, random, i, input);
      await prof.run(feeds);
    }
    prof.endProfiling();
    await prof.release();
    const file = readdirSync(req.profileDir).find((f) => f.startsWith('ort-profile') && f.endsWith('.json'));
    if (file) {
      const path = join(req.profileDir, file);
      const summary = summarizeOrtProfile(JSON.parse(readFileSync(path, 'utf8')));
      rmSync(path, { force: true });
      integerKernelShare = summary.integerKernelShare;
      topOps = summary.topOps;
    }
  }

  return {
    threads: settings.threads,
    sessionCreateMs,
    latencyMs: latencyStats(latencies),
    throughputPerSecond,
    throughputBatchSize: batch,
    peakRssBytes: peakRss,
    fileSizeBytes,
    accuracy: evaluated > 0 ? correct / evaluated : null,
    agreement: evaluated > 0 && req.referencePredictions ? agreeing / evaluated : null,
    evaluated,
    integerKernelShare,
    topOps,
  };
}

