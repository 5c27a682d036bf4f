import { z } from 'zod';
import { decimalInt } from './http.ts';
import { ModelIdSchema, ProfileIdSchema } from './ids.ts';
import { HyperparametersSchema, ModelNameSchema } from './registry.ts';
import { GatesSchema, WavesSchema } from './rollouts.ts';
import { DatasetSpecSchema, StudentSpecSchema, TeacherSpecSchema } from './training.ts';

/**
 * Tuning jobs: the fleet's own canary devices measure every candidate recipe of a profile and the
 * control plane picks one by measured numbers (control-plane/tuning/). HTTP bodies and responses.
 */

const ProfileId = ProfileIdSchema;

export const TuningObjective = z.enum(['lowest-p50', 'lowest-p90', 'highest-accuracy', 'lowest-memory']);
export type TuningObjective = z.infer<typeof TuningObjective>;

export const TuningConstraintsSchema = z
  .object({
    /** Largest accuracy drop (absolute, 0..1) on any canary against the reference. */
    maxAccuracyDrop: z.number().min(0).max(1).default(0.01),
    /** fp32-student: the fp32 student measured on the same device; teacher: the teacher's central (PyTorch) accuracy. */
    against: z.enum(['fp32-student', 'teacher']).default('fp32-student'),
    /** A candidate slower than this p50 (ms) on any canary is discarded. */
    maxP50Ms: z.number().positive().max(3_600_000).optional(),
    /** A candidate whose benchmark peaked above this RSS on any canary is discarded. */
    maxPeakRssBytes: z.number().int().positive().max(2 ** 50).optional(),
  })
  .strict();
export type TuningConstraints = z.infer<typeof TuningConstraintsSchema>;

export const TuningVariantsSchema = z
  .object({
    /** Also train the profile's recipe with the other weight granularity (per-channel vs per-tensor). */
    weightGranularity: z.boolean().default(true),
    /** Also train it with reduce_range flipped, where it matters (u8 activations: x86's u8×s8 kernels). */
    reduceRange: z.boolean().default(true),
    /** Also train it with the k most sensitive layers (lowest SQNR in the diagnostics) kept in float; 0 = no such variant. */
    floatLayers: z.number().int().min(0).max(8).default(2),
    /** The fp32 student as a candidate (the fallback when int8 does not pay on the device). */
    fp32: z.boolean().default(true),
  })
  .strict();

/** A candidate registered beforehand, e.g. built outside the trainer. */
export const TuningCandidateRefSchema = z
  .object({ profileId: ProfileId, modelId: ModelIdSchema, version: z.number().int().min(1), label: z.string().min(1).max(64).optional() })
  .strict();

export const TuningCreateSchema = z
  .object({
    /** Candidate model ids become `<name>-<profile>-<variant>`. */
    name: ModelNameSchema.default('tuned'),
    teacher: TeacherSpecSchema.optional(),
    student: StudentSpecSchema.optional(),
    dataset: DatasetSpecSchema.optional(),
    hyperparameters: HyperparametersSchema.default({}),
    /** Instead of training: registered model versions to measure (each becomes a `candidate` version of its own). */
    candidates: z.array(TuningCandidateRefSchema).min(1).max(256).optional(),
    /** Target profiles; default every profile with an online device. */
    profiles: z.array(ProfileId).min(1).max(64).optional(),
    variants: TuningVariantsSchema.default({ weightGranularity: true, reduceRange: true, floatLayers: 2, fp32: true }),
    constraints: TuningConstraintsSchema.default({ maxAccuracyDrop: 0.01, against: 'fp32-student' }),
    objective: TuningObjective.default('lowest-p50'),
    /** Canary devices per profile (all of them when fewer are online). */
    canaries: z.number().int().min(1).max(50).default(3),
    /** Start the rollout of the chosen candidates at once; otherwise wait for POST /tunings/:id/approve. */
    autoRollout: z.boolean().default(false),
    rollout: z.object({ waves: WavesSchema.optional(), gates: GatesSchema.optional() }).strict().default({}),
    /** A canary that has not answered one evaluation within this long counts it as missing. */
    evaluationTimeoutSeconds: z.number().int().min(5).max(24 * 3600).default(1800),
  })
  .strict()
  .superRefine((b, ctx) => {
    const training = b.teacher !== undefined || b.student !== undefined || b.dataset !== undefined;
    if (b.candidates && training) ctx.addIssue({ code: 'custom', path: ['candidates'], message: 'give either candidates or teacher/student/dataset, not both' });
    if (!b.candidates) {
      for (const k of ['teacher', 'student', 'dataset'] as const) if (b[k] === undefined) ctx.addIssue({ code: 'custom', path: [k], message: `required to train candidates (or give "candidates")` });
    }
  });
export type TuningCreate = z.infer<typeof TuningCreateSchema>;
export type TuningCreateInput = z.input<typeof TuningCreateSchema>;

/** training: the trainer builds the candidates; registering: they become `candidate` versions (runtime-checked here); evaluating: canaries measure them. */
export const TuningState = z.enum(['training', 'registering', 'evaluating', 'awaiting-approval', 'done', 'failed', 'cancelled']);
export type TuningState = z.infer<typeof TuningState>;
export const TERMINAL_TUNING_STATES: readonly TuningState[] = ['done', 'failed', 'cancelled'];

/** One canary's numbers for one candidate (from its `evaluation` report). */
export const DeviceMeasurementSchema = z.object({
  deviceId: z.string(),
  p50: z.number(),
  p90: z.number(),
  accuracy: z.number().nullable(),
  agreement: z.number().nullable(),
  peakRssBytes: z.number(),
  integerKernelShare: z.number().nullable(),
  sessionCreateMs: z.number(),
  at: z.number(),
});
export type DeviceMeasurement = z.infer<typeof DeviceMeasurementSchema>;

export const CandidateAggregateSchema = z.object({
  devices: z.number().int(),
  medianP50: z.number(),
  medianP90: z.number(),
  /** The lowest eval-set accuracy any canary measured (null: no eval set). */
  worstAccuracy: z.number().nullable(),
  peakRssBytes: z.number(),
  /** Median share of kernel time in integer kernels (onnxruntime profiling). */
  integerKernelShare: z.number().nullable(),
});
export type CandidateAggregate = z.infer<typeof CandidateAggregateSchema>;

export const CandidateStatus = z.enum(['chosen', 'pareto', 'dominated', 'discarded', 'not-measured']);
export type CandidateStatus = z.infer<typeof CandidateStatus>;

export const EvaluationState = z.enum(['pending', 'sent', 'done', 'failed', 'missing', 'cancelled']);

export const TuningCandidateSchema = z.object({
  profileId: z.string(),
  /** The variant within its profile: the recipe id, `fp32`, or a given label. */
  key: z.string(),
  modelId: z.string(),
  version: z.number().int(),
  kind: z.enum(['int8', 'fp32']),
  recipeId: z.string().nullable(),
  /** PyTorch (fake-quant for int8) accuracy on the eval set, central. */
  pytorchAccuracy: z.number().nullable(),
  /** onnxruntime on the control-plane host (registry runtime check). */
  runtimeAccuracy: z.number().nullable(),
  runtimeAgreement: z.number().nullable(),
  measurements: z.array(DeviceMeasurementSchema),
  /** Canaries that could not evaluate it, and why. */
  failures: z.array(z.object({ deviceId: z.string(), reason: z.string() })),
  /** Canaries that never answered (offline, timed out). */
  missing: z.array(z.object({ deviceId: z.string(), reason: z.string() })),
  aggregate: CandidateAggregateSchema.nullable(),
  status: CandidateStatus.nullable(),
  /** Why it was discarded, dominated or not picked; empty for the chosen one. */
  reasons: z.array(z.string()),
});
export type TuningCandidate = z.infer<typeof TuningCandidateSchema>;

export const ProfileDecisionSchema = z.object({
  profileId: z.string(),
  measured: z.boolean(),
  canaries: z.array(z.string()),
  chosen: z.object({ modelId: z.string(), version: z.number().int(), key: z.string() }).nullable(),
  /** The measured Pareto front (latency vs accuracy) among the feasible candidates, fastest first. */
  front: z.array(z.string()),
  reason: z.string(),
  /** What this profile's decision lacks (offline canaries, failed loads). */
  missing: z.array(z.string()),
});
export type ProfileDecision = z.infer<typeof ProfileDecisionSchema>;

export const TuningViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  state: TuningState,
  objective: TuningObjective,
  constraints: TuningConstraintsSchema,
  autoRollout: z.boolean(),
  profiles: z.array(z.string()),
  trainingJobId: z.string().nullable(),
  candidates: z.array(TuningCandidateSchema),
  decisions: z.array(ProfileDecisionSchema),
  evaluations: z.object({ pending: z.number().int(), sent: z.number().int(), done: z.number().int(), failed: z.number().int(), missing: z.number().int(), cancelled: z.number().int() }),
  rolloutId: z.string().nullable(),
  notes: z.array(z.string()),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  createdAt: z.number(),
  updatedAt: z.number(),
  finishedAt: z.number().nullable(),
});
export type TuningView = z.infer<typeof TuningViewSchema>;

export const TuningSummarySchema = TuningViewSchema.pick({ id: true, name: true, state: true, objective: true, profiles: true, trainingJobId: true, rolloutId: true, createdAt: true, updatedAt: true, finishedAt: true, evaluations: true });
export const TuningListSchema = z.object({ items: z.array(TuningSummarySchema), total: z.number().int(), limit: z.number().int(), offset: z.number().int() });

export const TuningListQuerySchema = z.object({
  state: TuningState.optional(),
  limit: decimalInt(1, 1000).default(50),
  offset: decimalInt(0, 1_000_000_000).default(0),
});

export const TuningReportQuerySchema = z.object({ format: z.enum(['json', 'csv']).default('json') });

/** One row per candidate and profile: what the report's CSV holds. */
export const TuningReportRowSchema = z.object({
  profileId: z.string(),
  candidate: z.string(),
  modelId: z.string(),
  version: z.number().int(),
  kind: z.string(),
  status: z.string(),
  pytorchAccuracy: z.number().nullable(),
  runtimeAccuracy: z.number().nullable(),
  deviceWorstAccuracy: z.number().nullable(),
  medianP50Ms: z.number().nullable(),
  medianP90Ms: z.number().nullable(),
  peakRssBytes: z.number().nullable(),
  integerKernelShare: z.number().nullable(),
  devices: z.string(),
  reasons: z.string(),
});
export type TuningReportRow = z.infer<typeof TuningReportRowSchema>;
export const TuningReportSchema = z.object({ tuning: TuningViewSchema.pick({ id: true, name: true, state: true, objective: true, constraints: true, decisions: true, notes: true }), rows: z.array(TuningReportRowSchema) });
