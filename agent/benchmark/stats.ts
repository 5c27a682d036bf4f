import type { z } from 'zod';
import type { LatencyStatsSchema } from '../../shared/messages.ts';

export type LatencyStats = z.infer<typeof LatencyStatsSchema>;

/** Nearest-rank percentile of sorted samples (as MLPerf LoadGen reports them): the smallest sample with at least p% at or below it. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? 0;
}

export function latencyStats(samplesMs: readonly number[]): LatencyStats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const n = sorted.length;
  const round = (x: number): number => Math.round(x * 1e4) / 1e4;
  return {
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    mean: round(n ? sorted.reduce((a, b) => a + b, 0) / n : 0),
    min: round(sorted[0] ?? 0),
    max: round(sorted[n - 1] ?? 0),
    count: n,
  };
}

/** Index of the largest value in `data[offset .. offset + length)`. */
export function argmax(data: ArrayLike<number>, offset = 0, length = data.length - offset): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = data[offset + i] ?? -Infinity;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}
