import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BenchmarkResultSchema, formatZodError, type BenchmarkResult } from '../../shared/messages.ts';
import type { BenchmarkSettings } from '../../shared/profile.ts';
import { silentLogger, type Logger } from '../log.ts';
import { findTrtexec } from '../probe.ts';
import { runTrtexec } from './trtexec.ts';
import type { EvalSet, Phase, WorkerMessage, WorkerRequest, WorkerResult } from './types.ts';
import type { Result } from '../../shared/result.ts';

export type { EvalSet } from './types.ts';

export type BenchmarkOptions = {
  modelPath: string;
  settings: BenchmarkSettings;
  /** What the profile asks for; `tensorrt` runs trtexec when the device has it and falls back to onnxruntime CPU otherwise. */
  runtime?: 'onnxruntime-cpu' | 'tensorrt';
  /** Default: found on PATH or in /usr/src/tensorrt/bin. Pass null to force the CPU path. */
  trtexecPath?: string | null;
  /** Default `--int8 --fp16` (the profile's `runtime.trtexecArgs`). */
  trtexecArgs?: readonly string[];
  evalSet?: EvalSet | null;
  referencePredictions?: Uint8Array | null;
  /** For random input where the model's input shape is symbolic beyond the batch dimension. */
  inputShape?: number[] | null;
  /** Aborting stops the worker (asks, then terminates it after a short grace). */
  signal?: AbortSignal;
  /** Hard stop for the whole run; default maxSeconds + 60 s (model load and profiling come on top of the timed phases). */
  hardTimeoutMs?: number;
  onProgress?: (p: { phase: Phase; queries: number }) => void;
  logger?: Logger;
};

export type BenchmarkOutcome = Result<{ result: BenchmarkResult; evaluated: number; trtexecVersion: string | null }>;

/** Next to this module: from source a plain-JS entry that registers tsx and imports worker.ts; in the release tarball (scripts/release-agent.ts) the bundled worker itself. */
const WORKER_URL = new URL('./worker-entry.mjs', import.meta.url);

/** Benchmarks one model on this device: trtexec where TensorRT is asked for and present, else onnxruntime CPU in a worker thread. */
export async function runBenchmark(opts: BenchmarkOptions): Promise<BenchmarkOutcome> {
  const log = opts.logger ?? silentLogger;
  try {
    statSync(opts.modelPath);
  } catch (e) {
    return { ok: false, error: `cannot read model ${opts.modelPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  if (opts.referencePredictions && opts.evalSet && opts.referencePredictions.length < opts.evalSet.count) {
    return { ok: false, error: `reference predictions (${opts.referencePredictions.length}) are fewer than the eval set (${opts.evalSet.count})` };
  }
  if (opts.runtime === 'tensorrt') {
    const trtexec = opts.trtexecPath === undefined ? findTrtexec() : opts.trtexecPath;
    if (trtexec) return runTensorRt(opts, trtexec);
    log.info('trtexec not found; benchmarking on onnxruntime CPU instead', { model: opts.modelPath });
  }
  return runOnnxRuntime(opts);
}

function validate(raw: unknown): Result<BenchmarkResult> {
  const parsed = BenchmarkResultSchema.safeParse(raw);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, error: `benchmark produced an invalid result: ${formatZodError(parsed.error)}` };
}

async function runOnnxRuntime(opts: BenchmarkOptions): Promise<BenchmarkOutcome> {
  const profileDir = mkdtempSync(join(tmpdir(), 'edgefleet-bench-'));
  const request: WorkerRequest = {
    modelPath: opts.modelPath,
    settings: opts.settings,
    evalSet: opts.evalSet ?? null,
    referencePredictions: opts.referencePredictions ?? null,
    inputShape: opts.inputShape ?? null,
    profileDir,
  };
  // a child process, not a worker thread: killing it mid-inference is safe, terminating a thread is not
  const worker = fork(fileURLToPath(WORKER_URL), [], { serialization: 'advanced', execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  worker.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
  worker.send({ type: 'run', request });
  const hardTimeoutMs = opts.hardTimeoutMs ?? (opts.settings.maxSeconds + 60) * 1000;

  try {
    const outcome = await new Promise<Result<WorkerResult>>((resolve) => {
      let settled = false;
      const finish = (v: Result<WorkerResult>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(hard);
        opts.signal?.removeEventListener('abort', onAbort);
        if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
        resolve(v);
      };
      const hard = setTimeout(() => finish({ ok: false, error: `benchmark exceeded its hard limit of ${Math.round(hardTimeoutMs / 1000)} s and was terminated` }), hardTimeoutMs);
      const onAbort = (): void => {
        if (worker.connected) worker.send({ type: 'stop' });
        setTimeout(() => finish({ ok: false, error: 'benchmark stopped' }), 2000).unref();
      };
      if (opts.signal?.aborted) onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'progress') opts.onProgress?.({ phase: m.phase, queries: m.queries });
        else if (m.type === 'result') finish({ ok: true, value: m.result });
        else finish({ ok: false, error: m.message });
      });
      worker.on('error', (e) => finish({ ok: false, error: `benchmark worker crashed: ${e.message}` }));
      worker.on('exit', (code, signal) => finish({ ok: false, error: `benchmark process exited (${signal ?? `code ${code}`}) before reporting${stderr ? `: ${stderr.trim().split('\n').slice(-1)[0]}` : ''}` }));
    });
    if (!outcome.ok) return outcome;
    const { evaluated, ...rest } = outcome.value;
    // peak RSS is the benchmark process's own (Node runtime + onnxruntime session), sampled there
    const v = validate({ runtime: 'onnxruntime-cpu', ...rest });
    return v.ok ? { ok: true, value: { result: v.value, evaluated, trtexecVersion: null } } : v;
  } finally {
    rmSync(profileDir, { recursive: true, force: true });
  }
}

async function runTensorRt(opts: BenchmarkOptions, trtexecPath: string): Promise<BenchmarkOutcome> {
  const s = opts.settings;
  const started = performance.now();
  let run;
  try {
    run = await runTrtexec({
      trtexecPath,
      modelPath: opts.modelPath,
      extraArgs: opts.trtexecArgs ?? ['--int8', '--fp16'],
      warmupMs: 1000,
      durationSeconds: Math.min(s.maxSeconds, Math.max(s.minSeconds, 1)),
      iterations: s.minQueries,
      timeoutMs: opts.hardTimeoutMs ?? (s.maxSeconds + 600) * 1000, // engine build on a Jetson takes minutes
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  const { summary, times } = run;
  const totalMs = performance.now() - started;
  const l = summary.latencyMs;
  const walltimeSeconds = times?.walltimeSeconds ?? summary.walltimeSeconds ?? 0;
  const timedMs = walltimeSeconds * 1000 + 1000;
  if (!times) (opts.logger ?? silentLogger).info('trtexec --exportTimes unusable; percentiles from its printed summary', { model: opts.modelPath, reason: run.timesError });
  // the per-query trace goes through the same statistics as onnxruntime's runs (nearest-rank percentiles)
  const latencyMs = times
    ? times.latencyMs
    : {
        p50: l.median,
        // TensorRT before 8.6 prints only p99; it bounds p90 from above, which is the conservative side for a gate
        p90: l.p90 ?? l.p99 ?? l.max,
        p99: l.p99 ?? l.max,
        mean: l.mean,
        min: l.min,
        max: l.max,
        count: summary.queries ?? Math.round(summary.throughputQps * (summary.walltimeSeconds ?? 0)),
      };
  const v = validate({
    runtime: 'tensorrt',
    threads: s.threads,
    // trtexec prints no load time: everything before the timed run (parse, engine build, deserialize) counts as cold load
    sessionCreateMs: Math.max(0, totalMs - timedMs),
    latencyMs,
    throughputPerSecond: times && times.walltimeSeconds > 0 ? times.queries / times.walltimeSeconds : summary.throughputQps,
    throughputBatchSize: 1,
    peakRssBytes: run.peakRssBytes,
    fileSizeBytes: statSync(opts.modelPath).size,
    // trtexec feeds random data: accuracy needs an onnxruntime pass (not done here)
    accuracy: null,
    agreement: null,
    integerKernelShare: null,
    topOps: [],
  });
  return v.ok ? { ok: true, value: { result: v.value, evaluated: 0, trtexecVersion: summary.version } } : v;
}
