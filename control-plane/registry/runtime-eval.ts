import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { u8s8Saturates } from '../../shared/kernels.ts';
import { ORT_GRAPH_OPTIMIZATION_LEVEL } from '../../shared/ort-session.ts';
import type { HostCpu, RuntimeCheck } from '../../shared/registry.ts';
import type { Result } from '../../shared/result.ts';

/** Default: a model whose onnxruntime top-1 agrees with PyTorch's on fewer than 99% of eval samples is flagged. */
export const DEFAULT_RUNTIME_AGREEMENT_THRESHOLD = 0.99;

export type RuntimeEvalModel = { key: string; modelPath: string; evalsetPath: string; referencePredictionsPath: string | null };
export type RuntimeEvalRequest = { threads: number; models: RuntimeEvalModel[] };
export type RuntimeEvalMeasured = { evaluated: number; accuracy: number; agreement: number | null; predictions: Uint8Array };
export type RuntimeEvalOutcome = Result<RuntimeEvalMeasured>;
export type RuntimeEvalWorkerMessage = ({ type: 'model'; key: string } & RuntimeEvalOutcome) | { type: 'done' } | { type: 'fatal'; message: string };

const ENTRY = fileURLToPath(new URL('./runtime-eval-entry.mjs', import.meta.url));

export const ORT_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve('onnxruntime-node/package.json')), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/**
 * Evaluates models in onnxruntime-node in one child process, one after the other (the host has few
 * cores; a training job just used them). A model that fails, a crash or the time limit ends only
 * the models not yet answered, each with the reason.
 */
export async function runRuntimeEval(req: RuntimeEvalRequest, opts: { timeoutMs: number }): Promise<Map<string, RuntimeEvalOutcome>> {
  const results = new Map<string, RuntimeEvalOutcome>();
  if (req.models.length === 0) return results;
  const child = fork(ENTRY, [], { serialization: 'advanced', execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
  await new Promise<void>((resolve) => {
    let settled = false;
    const finish = (missing: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (missing) for (const m of req.models) if (!results.has(m.key)) results.set(m.key, { ok: false, error: missing });
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      resolve();
    };
    const timer = setTimeout(() => finish(`runtime check exceeded ${Math.round(opts.timeoutMs / 1000)} s and was stopped`), opts.timeoutMs);
    child.on('message', (m: RuntimeEvalWorkerMessage) => {
      if (m.type === 'model') {
        const { type: _t, key, ...outcome } = m;
        results.set(key, outcome.ok ? { ok: true, value: { ...outcome.value, predictions: new Uint8Array(outcome.value.predictions) } } : outcome);
      } else if (m.type === 'done') finish('the runtime check process gave no answer for this model');
      else finish(`runtime check failed: ${m.message}`);
    });
    child.on('error', (e) => finish(`runtime check process failed: ${e.message}`));
    child.on('exit', (code, signal) => finish(`runtime check process exited (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim().split('\n').slice(-1)[0]}` : ''}`));
    child.send({ type: 'run', request: req });
  });
  return results;
}

/** What the registry stores for one model's outcome: the numbers, the host, and whether it is flagged. */
export function runtimeCheck(o: RuntimeEvalOutcome, ctx: { host: HostCpu; threshold: number; threads: number; measuredAt: number }): RuntimeCheck {
  const base = { engine: 'onnxruntime-node' as const, ortVersion: ORT_VERSION, graphOptimizationLevel: ORT_GRAPH_OPTIMIZATION_LEVEL, threads: ctx.threads, host: ctx.host, u8u8Remedy: u8s8Saturates(ctx.host.arch, ctx.host.isaFlags), threshold: ctx.threshold, measuredAt: ctx.measuredAt };
  if (!o.ok) return { ...base, evaluated: 0, accuracy: null, agreement: null, flagged: true, reason: o.error };
  const v = o.value;
  const low = v.agreement !== null && v.agreement < ctx.threshold;
  return {
    ...base,
    evaluated: v.evaluated,
    accuracy: v.accuracy,
    agreement: v.agreement,
    flagged: low,
    reason: low ? `top-1 agreement with PyTorch ${pct(v.agreement!)} on ${ctx.host.label} is below ${pct(ctx.threshold)}: this CPU's onnxruntime kernels do not compute what PyTorch computed` : null,
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
