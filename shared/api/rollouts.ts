import { z } from 'zod';
import { Millis } from './common.ts';
import { decimalInt } from '../http.ts';
import { checkId } from '../ids.ts';

/** Answers of /rollouts, /rollouts/:id (and its actions), /reports/rollouts/:id and /reports/models/:id. */

export const RolloutStateSchema = z.enum(['running', 'paused', 'succeeded', 'aborted', 'rolled-back']);
/** States in which pause, resume, abort or rollback no longer apply. */
export const FINISHED_ROLLOUT_STATES = ['succeeded', 'aborted', 'rolled-back'] as const;

export const RolloutSummarySchema = z.object({
  id: z.string(),
  name: z.string(),
  state: RolloutStateSchema,
  currentWave: z.number().int(),
  abortReason: z.string().nullable(),
  devices: z.number().int(),
  createdAt: Millis,
  finishedAt: Millis.nullable(),
  models: z.array(z.object({ modelId: z.string(), version: z.number().int(), profileId: z.string() })),
  gates: z.record(z.string(), z.union([z.number(), z.boolean(), z.null()])),
});

export const RolloutWaveSchema = z.object({
  wave: z.number().int(),
  planned: z.number().int(),
  devices: z.number().int(),
  state: z.string(),
  active: z.number().int(),
  failed: z.number().int(),
  inFlight: z.number().int(),
  pending: z.number().int(),
  rolledBack: z.number().int(),
  medianP50Ms: z.number().nullable(),
});

export const RolloutDeviceSchema = z.object({
  deviceId: z.string(),
  profileId: z.string().nullable(),
  wave: z.number().int(),
  state: z.string(),
  /** `<modelId>@<version>` */
  model: z.string(),
  previousModel: z.string().nullable(),
  p50Ms: z.number().nullable(),
  accuracy: z.number().nullable(),
  speedupVsFp32: z.number().nullable(),
  reason: z.string().nullable(),
});

export const RolloutReportSchema = z.object({ summary: RolloutSummarySchema, waves: z.array(RolloutWaveSchema), devices: z.array(RolloutDeviceSchema) });

export const ROLLOUT_DEVICE_STATES = ['pending', 'sent', 'downloading', 'verifying', 'benchmarking', 'active', 'failed', 'timed-out', 'rolled-back'] as const;

/** Where a page of a rollout's devices starts: `<wave>:<deviceId>` of the last device of the page before. */
export const RolloutDeviceCursorSchema = z
  .string()
  .max(140)
  .transform((s, ctx) => {
    const m = /^(0|[1-9][0-9]{0,5}):(.+)$/.exec(s);
    const id = m ? checkId('device', m[2]) : null;
    if (!m || !id?.ok) {
      ctx.addIssue({ code: 'custom', message: `"${s.slice(0, 40)}" is not <wave>:<device id>${id && !id.ok ? ` (${id.error})` : ''}` });
      return z.NEVER;
    }
    return { wave: Number(m[1]), deviceId: m[2]! };
  });
export const rolloutDeviceCursor = (c: { wave: number; deviceId: string }): string => `${c.wave}:${c.deviceId}`;

/**
 * GET /rollouts/:id (and its actions' answers): the rollout's waves and counts always whole, its devices a page at a
 * time in wave then device id order (`after` = the previous page's `page.next`), optionally of one state or wave.
 */
export const RolloutViewQuerySchema = z.object({
  limit: decimalInt(1, 5000).default(500),
  after: RolloutDeviceCursorSchema.optional(),
  state: z.enum(ROLLOUT_DEVICE_STATES).optional(),
  wave: decimalInt(0, 999_999).optional(),
  /** The newest events, at most this many. */
  events: decimalInt(0, 1000).default(200),
});

export const RolloutViewSchema = RolloutReportSchema.extend({
  events: z.array(z.object({ at: Millis, kind: z.string(), deviceId: z.string().nullable(), detail: z.string().nullable() })),
  /** The rollout's devices per state (all of them, whatever the page). */
  deviceStates: z.record(z.string(), z.number().int()),
  page: z.object({
    limit: z.number().int(),
    /** Devices matching the state and wave asked for (all pages). */
    matching: z.number().int(),
    /** `after` for the next page; null on the last. */
    next: z.string().nullable(),
  }),
});
export const RolloutListSchema = z.object({ items: z.array(RolloutSummarySchema) });

export const ModelReportDeviceSchema = z.object({
  deviceId: z.string(),
  profileId: z.string().nullable(),
  version: z.number().int(),
  runtime: z.string(),
  p50Ms: z.number(),
  p90Ms: z.number(),
  p99Ms: z.number(),
  throughputPerSecond: z.number(),
  peakRssBytes: z.number(),
  accuracy: z.number().nullable(),
  agreement: z.number().nullable(),
  fp32P50Ms: z.number().nullable(),
  fp32Accuracy: z.number().nullable(),
  speedupVsFp32: z.number().nullable(),
  integerKernelShare: z.number().nullable(),
  reportedAt: Millis,
});

export const ModelReportProfileSchema = z.object({
  profileId: z.string(),
  devices: z.number().int(),
  versions: z.array(z.number().int()),
  medianP50Ms: z.number().nullable(),
  medianP90Ms: z.number().nullable(),
  medianPeakRssBytes: z.number().nullable(),
  medianAccuracy: z.number().nullable(),
  centralAccuracy: z.number().nullable(),
  accuracyDeltaVsCentral: z.number().nullable(),
  medianSpeedupVsFp32: z.number().nullable(),
  medianFp32P50Ms: z.number().nullable(),
});

export const ModelReportSchema = z.object({
  modelId: z.string(),
  version: z.number().int().nullable(),
  profiles: z.array(ModelReportProfileSchema),
  devices: z.array(ModelReportDeviceSchema),
});

export type RolloutSummary = z.infer<typeof RolloutSummarySchema>;
export type RolloutView = z.infer<typeof RolloutViewSchema>;
export type RolloutViewQuery = z.infer<typeof RolloutViewQuerySchema>;
export type ModelReport = z.infer<typeof ModelReportSchema>;
