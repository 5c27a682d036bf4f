import { z } from 'zod';
import { formatZodError } from '../../shared/messages.ts';
import type { Result } from '../../shared/result.ts';
import { latencyStats, type LatencyStats } from './stats.ts';

/**
 * One query of `trtexec --exportTimes=<file>` (TensorRT's exportJSONTrace in
 * samples/common/sampleReporting.cpp). 8.x writes startEnqMs, endEnqMs, startH2dMs, endH2dMs,
 * startComputeMs, endComputeMs, startD2hMs, endD2hMs, h2dMs, computeMs, d2hMs, latencyMs (8.4 and
 * before also endToEndMs); 7.x wrote startInMs/endInMs/startOutMs/endOutMs instead of the H2D/D2H
 * pairs. Times are ms since inference started; latencyMs = H2D + compute + D2H, trtexec's "Latency".
 */
const ms = z.number().finite().min(0).max(1e9);
const QuerySchema = z.looseObject({
  startComputeMs: ms,
  endComputeMs: ms,
  computeMs: ms,
  latencyMs: ms,
  startH2dMs: ms.optional(),
  startInMs: ms.optional(),
  endD2hMs: ms.optional(),
  endOutMs: ms.optional(),
});
/** A file is a JSON array; 2 million queries is hours of a fast engine, far beyond what the agent asks for. */
export const TrtexecTimesSchema = z.array(QuerySchema).max(2_000_000);

export type TrtexecTimes = {
  /** trtexec's Latency (H2D + GPU compute + D2H) per timed query, through the agent's own statistics. */
  latencyMs: LatencyStats;
  gpuComputeMs: LatencyStats;
  queries: number;
  warmupQueries: number;
  /** From the first timed query's H2D start to the last one's D2H end, as trtexec computes its walltime. */
  walltimeSeconds: number;
};

/**
 * Reads an exportTimes file's text. Warm-up queries (TensorRT 8.4 and before writes them too) are the
 * ones that started computing before `warmupMs`, trtexec's own rule; the rest are the timed queries.
 */
export function parseTrtexecTimes(text: string, warmupMs: number): Result<TrtexecTimes> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `exportTimes file is not JSON: ${(e as Error).message}` };
  }
  const parsed = TrtexecTimesSchema.safeParse(json);
  if (!parsed.success) return { ok: false, error: `exportTimes file: ${formatZodError(parsed.error)}` };
  const all = parsed.data;
  const firstTimed = all.findIndex((q) => q.startComputeMs >= warmupMs);
  if (firstTimed < 0) return { ok: false, error: `exportTimes file has no query after the ${warmupMs} ms warm-up (${all.length} queries in all)` };
  const timed = all.slice(firstTimed);
  const first = timed[0]!;
  const last = timed[timed.length - 1]!;
  const start = first.startH2dMs ?? first.startInMs ?? first.startComputeMs;
  const end = last.endD2hMs ?? last.endOutMs ?? last.endComputeMs;
  return {
    ok: true,
    value: {
      latencyMs: latencyStats(timed.map((q) => q.latencyMs)),
      gpuComputeMs: latencyStats(timed.map((q) => q.computeMs)),
      queries: timed.length,
      warmupQueries: firstTimed,
      walltimeSeconds: Math.max(0, end - start) / 1000,
    },
  };
}
