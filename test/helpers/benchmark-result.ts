import type { BenchmarkResult } from '../../shared/messages.ts';

/** A well-formed benchmark result with every latency statistic at `p50` (unit tests of what stores and services do with one). */
export const benchmarkResult = (p50: number, extra: Partial<BenchmarkResult> = {}): BenchmarkResult => ({
  runtime: 'onnxruntime-cpu',
  threads: 1,
  sessionCreateMs: 1,
  latencyMs: { p50, p90: p50, p99: p50, mean: p50, min: p50, max: p50, count: 10 },
  throughputPerSecond: 1,
  throughputBatchSize: 1,
  peakRssBytes: 1,
  fileSizeBytes: 1,
  accuracy: 0.9,
  agreement: 1,
  integerKernelShare: null,
  topOps: [],
  ...extra,
});
