import * as ort from 'onnxruntime-node';
import { argmaxRows, evalSetBatch, type EvalSet } from '../../shared/evalset.ts';

/** onnxruntime-node measurements, single-stream style: warm-up, then sequential queries. */

export type LatencyStats = { p50: number; p90: number; p99: number; mean: number; min: number; max: number; queries: number };

export function sessionOptions(threads: number, extra: ort.InferenceSession.SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...extra,
  };
}

export async function openSession(path: string, threads: number, extra: ort.InferenceSession.SessionOptions = {}): Promise<{ session: ort.InferenceSession; loadMs: number }> {
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(path, sessionOptions(threads, extra));
  return { session, loadMs: performance.now() - t0 };
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export async function latency(session: ort.InferenceSession, shape: number[], opts: { warmup?: number; minQueries?: number; minSeconds?: number } = {}): Promise<LatencyStats> {
  const warmup = opts.warmup ?? 20;
  const minQ = opts.minQueries ?? 200;
  const minMs = (opts.minSeconds ?? 2) * 1000;
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = ((i * 2654435761) % 256) / 255;
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', data, shape) };
  for (let i = 0; i < warmup; i++) await session.run(feeds);
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minQ || performance.now() - start < minMs) {
    const t0 = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t0);
    if (times.length > 100_000) break;
  }
  const sorted = [...times].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: times.reduce((a, b) => a + b, 0) / times.length,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    queries: times.length,
  };
}

/** Samples per second at a fixed batch size. */
export async function throughput(session: ort.InferenceSession, shape: number[], seconds = 2): Promise<number> {
  const stats = await latency(session, shape, { warmup: 3, minQueries: 5, minSeconds: seconds });
  return (shape[0]! * 1000) / stats.mean;
}

/** Top-1 accuracy and predictions of a model on an eval set. */
export async function evalAccuracy(session: ort.InferenceSession, set: EvalSet, batch = 250): Promise<{ accuracy: number; predictions: Uint8Array }> {
  const preds = new Uint8Array(set.count);
  for (let i = 0; i < set.count; i += batch) {
    const n = Math.min(batch, set.count - i);
    const input = new ort.Tensor('float32', evalSetBatch(set, i, n), [n, set.channels, set.height, set.width]);
    const out = await session.run({ [session.inputNames[0]!]: input });
    const logits = out[session.outputNames[0]!]!;
    preds.set(argmaxRows(logits.data as Float32Array, logits.dims[1]!), i);
  }
  let ok = 0;
  for (let i = 0; i < set.count; i++) if (preds[i] === set.labels[i]) ok++;
  return { accuracy: set.count ? ok / set.count : 0, predictions: preds };
}
