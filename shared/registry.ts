import { z } from 'zod';
import { ModelIdSchema } from './ids.ts';
import { decimalInt } from './http.ts';
import { RecipeSchema } from './recipe.ts';
import { DatasetSpecSchema, StudentSpecSchema, TeacherSpecSchema, TrainerWarningSchema, TrainingJobSpecSchema, TrainingPhase } from './training.ts';

/**
 * HTTP bodies, queries and responses of the training-job and model-registry APIs. The trainer's own
 * contract (job spec, output lines) is shared/training.ts; this file only adds what the control plane
 * puts around it.
 */

// ------------------------------------------------------------------ training jobs

export const TrainingJobState = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted']);
export type TrainingJobState = z.infer<typeof TrainingJobState>;
export const TERMINAL_JOB_STATES: readonly TrainingJobState[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];

/** Model names become model ids (`<name>-<recipeId>`) and folder names. */
export const ModelNameSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, '1-63 lower-case letters, digits and dashes');
/** Model ids follow the one id rule (shared/ids.ts). */
export { ModelIdSchema };

const spec = TrainingJobSpecSchema.shape;
const isAbsolute = (p: string): boolean => p.startsWith('/');

/** Everything of the trainer spec but identity, data, models and recipes; each part optional. */
export const HyperparametersSchema = z
  .object({
    device: spec.device.optional(),
    seed: spec.seed.optional(),
    threads: spec.threads,
    limits: spec.limits,
    validationSplit: spec.validationSplit.optional(),
    evalSetSize: spec.evalSetSize.optional(),
    training: spec.training.optional(),
    distill: spec.distill.optional(),
    qat: spec.qat.optional(),
    ptq: spec.ptq,
    mixedPrecision: spec.mixedPrecision,
  })
  .strict();
export type Hyperparameters = z.infer<typeof HyperparametersSchema>;

/** The trainer runs with the control plane's working directory: server-local paths must be absolute. */
const mustBeAbsolute = (path: string | undefined, at: (string | number)[], ctx: z.RefinementCtx): void => {
  if (path === undefined) return;
  const file = at[at.length - 1] === 'path' && path.includes('.py:') ? path.slice(0, path.lastIndexOf(':')) : path;
  if (!isAbsolute(file)) ctx.addIssue({ code: 'custom', path: at, message: `"${path}" must be an absolute path on the control-plane host` });
};

export const TrainingJobCreateSchema = z
  .object({
    /** Model name: the job's int8 models become `<name>-<recipeId>`, its fp32 student `<name>-fp32`. */
    name: ModelNameSchema.default('student'),
    teacher: TeacherSpecSchema,
    student: StudentSpecSchema,
    dataset: DatasetSpecSchema,
    /** Device-profile ids; each brings its recipe. */
    profiles: z.array(z.string().min(1).max(64)).min(1).max(64).optional(),
    /** Explicit recipes, besides or instead of the profiles' ones. */
    recipes: z.array(RecipeSchema).min(1).max(64).optional(),
    hyperparameters: HyperparametersSchema.default({}),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (!b.profiles && !b.recipes) ctx.addIssue({ code: 'custom', path: ['profiles'], message: 'give profiles (device-profile ids) or recipes' });
    if (b.dataset.kind !== 'idx') mustBeAbsolute(b.dataset.path, ['dataset', 'path'], ctx);
    if (b.dataset.kind === 'imagefolder' || b.dataset.kind === 'csv') mustBeAbsolute(b.dataset.testPath, ['dataset', 'testPath'], ctx);
    if (b.dataset.kind === 'idx') {
      for (const k of ['trainImages', 'trainLabels', 'testImages', 'testLabels'] as const) mustBeAbsolute(b.dataset[k], ['dataset', k], ctx);
    }
    if (b.teacher.kind === 'torchscript') mustBeAbsolute(b.teacher.path, ['teacher', 'path'], ctx);
    if (b.student.kind === 'file') mustBeAbsolute(b.student.path, ['student', 'path'], ctx);
  });
export type TrainingJobCreate = z.infer<typeof TrainingJobCreateSchema>;
export type TrainingJobCreateInput = z.input<typeof TrainingJobCreateSchema>;

export const TrainingJobListQuerySchema = z.object({
  state: TrainingJobState.optional(),
  limit: decimalInt(1, 1000).default(50),
  offset: decimalInt(0, 1_000_000_000).default(0),
});

export const JobProgressSchema = z.object({
  phase: TrainingPhase,
  recipeId: z.string().nullable(),
  epoch: z.number(),
  epochs: z.number(),
  step: z.number(),
  totalSteps: z.number(),
  loss: z.number().nullable(),
  /** The last epoch-end accuracy seen in this phase (progress lines carry it only at epoch end). */
  accuracy: z.number().nullable(),
  lr: z.number().nullable(),
  etaSeconds: z.number().nullable(),
  /** Whole-job estimate and share of planned training steps done (the trainer's jobEtaSeconds/jobProgress); absent in older rows. */
  jobEtaSeconds: z.number().nullable().optional(),
  jobProgress: z.number().nullable().optional(),
  /** Phases finished so far, in order (teacher, distill, qat:<recipe>...). */
  phasesDone: z.array(z.string()),
  /** One point per finished epoch (loss and held-out accuracy at its end), oldest first: the job page's charts. */
  epochHistory: z
    .array(z.object({ phase: z.string(), recipeId: z.string().nullable(), epoch: z.number(), loss: z.number().nullable(), accuracy: z.number(), at: z.number() }))
    .default([]),
  updatedAt: z.number(),
});
export type JobProgress = z.infer<typeof JobProgressSchema>;

export const JobLogEntrySchema = z.object({
  ts: z.number(),
  level: z.enum(['debug', 'info', 'warn', 'error', 'stderr']),
  message: z.string(),
});
export type JobLogEntry = z.infer<typeof JobLogEntrySchema>;

export const JobErrorSchema = z.object({ code: z.string(), message: z.string(), field: z.string().optional() });
export type JobError = z.infer<typeof JobErrorSchema>;

export const ModelRefSchema = z.object({ id: z.string(), version: z.number().int(), role: z.string() });

export const TrainingJobViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  state: TrainingJobState,
  profiles: z.array(z.string()),
  recipes: z.array(z.string()),
  outputDir: z.string(),
  createdAt: z.number(),
  startedAt: z.number().nullable(),
  finishedAt: z.number().nullable(),
  /** The trainer child process while the job runs. */
  trainerPid: z.number().int().nullable(),
  progress: JobProgressSchema.nullable(),
  metrics: z.unknown().nullable(),
  error: JobErrorSchema.nullable(),
  /** The trainer's findings (distillation worse than hard labels, ops kept in float...), from its result; empty until it finishes. */
  warnings: z.array(TrainerWarningSchema),
  logTail: z.array(JobLogEntrySchema),
  models: z.array(ModelRefSchema),
  request: z.unknown(),
});
export type TrainingJobView = z.infer<typeof TrainingJobViewSchema>;

// ------------------------------------------------------------------ model registry

export const ModelKind = z.enum(['int8', 'fp32']);
export type ModelKind = z.infer<typeof ModelKind>;

/** `candidate`: a tuning job's model under measurement on canaries (control-plane/tuning/); never picked as a profile's latest. */
export const ModelRole = z.enum(['teacher-fp32', 'student-fp32', 'student-hard-fp32', 'student-int8-qat', 'student-int8-ptq', 'imported', 'candidate']);
export type ModelRole = z.infer<typeof ModelRole>;

export const CompanionRole = z.enum(['fp32-baseline', 'evalset', 'reference-predictions']);
export type CompanionRole = z.infer<typeof CompanionRole>;

export const CompanionSchema = z.object({
  role: CompanionRole,
  /** Server-local path (inside the registry folder). */
  path: z.string(),
  sha256: z.string(),
  size: z.number().int(),
  /** For fp32-baseline: the model version it is. */
  modelId: z.string().optional(),
  version: z.number().int().optional(),
});
export type Companion = z.infer<typeof CompanionSchema>;

/** The control-plane host a central runtime check ran on: CPU model and the ISA flags that pick onnxruntime's kernels. */
export const HostCpuSchema = z.object({
  model: z.string(),
  arch: z.string(),
  isaFlags: z.array(z.string()),
  /** e.g. "AMD EPYC (sse4_1 avx avx2 fma, no VNNI)": what a report prints after "onnxruntime on". */
  label: z.string(),
});
export type HostCpu = z.infer<typeof HostCpuSchema>;

/**
 * The model run in onnxruntime-node on the control-plane host, at the agent's session settings
 * (shared/ort-session.ts), on its eval set, before registration completed. `agreement` is top-1
 * agreement with the PyTorch model's reference predictions; below `threshold` the model is flagged:
 * the integer kernels of this CPU do not compute what PyTorch computed.
 */
export const RuntimeCheckSchema = z.object({
  engine: z.literal('onnxruntime-node'),
  ortVersion: z.string(),
  graphOptimizationLevel: z.string(),
  threads: z.number().int(),
  host: HostCpuSchema,
  /**
   * Whether the session ran with onnxruntime's U8U8 remedy (session.x64quantprecision), as the agent's
   * does on a CPU whose u8×s8 kernels saturate (AVX2 without VNNI; shared/kernels.ts). Absent on checks
   * stored before it was recorded.
   */
  u8u8Remedy: z.boolean().optional(),
  evaluated: z.number().int(),
  accuracy: z.number().nullable(),
  agreement: z.number().nullable(),
  threshold: z.number(),
  flagged: z.boolean(),
  /** Why it is flagged (low agreement, failed to load...), null when it is not. */
  reason: z.string().nullable(),
  measuredAt: z.number(),
});
export type RuntimeCheck = z.infer<typeof RuntimeCheckSchema>;

export const ModelMetricsSchema = z.object({
  /** This model's top-1 on its shipped eval set in PyTorch (central, fake-quant for int8): what devices compare against. */
  accuracy: z.number().nullable(),
  /** Test-split top-1 from the trainer's result: the teacher, the fp32 student, the int8 student for this recipe. */
  teacherFp32: z.number().nullable(),
  studentFp32: z.number().nullable(),
  studentInt8: z.number().nullable(),
  /** The central onnxruntime check (null: no eval set to run, or registered before the check existed). */
  runtime: RuntimeCheckSchema.nullable(),
});
export type ModelMetrics = z.infer<typeof ModelMetricsSchema>;

export const ModelLineageSchema = z.object({
  jobId: z.string().nullable(),
  source: z.enum(['training-job', 'manual']),
  teacher: z.unknown().nullable(),
  dataset: z.unknown().nullable(),
  spec: z.unknown().nullable(),
  versions: z.object({ trainer: z.string(), torch: z.string(), python: z.string(), onnx: z.string() }).nullable(),
  parents: z.array(ModelRefSchema),
  inputShape: z.array(z.number().int()).nullable(),
  floatLayers: z.array(z.string()),
  /** The server-local file a manual registration copied from. */
  importedFrom: z.string().nullable(),
  /** Class names by class id (string labels, folder names, Fashion-MNIST's); null where the labels were bare ids. Older rows lack it. */
  classNames: z.array(z.string()).nullable().default(null),
});
export type ModelLineage = z.infer<typeof ModelLineageSchema>;

export const ModelVersionSchema = z.object({
  id: z.string(),
  version: z.number().int(),
  name: z.string(),
  profileId: z.string().nullable(),
  recipeId: z.string().nullable(),
  kind: ModelKind,
  role: ModelRole,
  filePath: z.string(),
  sha256: z.string(),
  size: z.number().int(),
  lineage: ModelLineageSchema,
  metrics: ModelMetricsSchema,
  diagnostics: z.unknown().nullable(),
  companions: z.array(CompanionSchema),
  /** ed25519 (base64) by the control plane's model-signing key over signedModelPayload(). */
  signature: z.string(),
  createdAt: z.number(),
});
export type ModelVersion = z.infer<typeof ModelVersionSchema>;

export type SignedModelPayload = Pick<ModelVersion, 'id' | 'version' | 'sha256' | 'size' | 'profileId' | 'recipeId' | 'kind'>;

/** Exactly the fields the signature covers; sign and verify its canonical JSON (shared/signing.ts). */
export function signedModelPayload(m: SignedModelPayload): SignedModelPayload {
  return { id: m.id, version: m.version, sha256: m.sha256, size: m.size, profileId: m.profileId, recipeId: m.recipeId, kind: m.kind };
}

export const ModelListQuerySchema = z.object({
  profile: z.string().max(64).optional(),
  recipe: z.string().max(64).optional(),
  kind: ModelKind.optional(),
  role: ModelRole.optional(),
  job: z.string().max(128).optional(),
  name: z.string().max(64).optional(),
  limit: decimalInt(1, 1000).default(100),
  offset: decimalInt(0, 1_000_000_000).default(0),
});
export type ModelListQuery = z.infer<typeof ModelListQuerySchema>;

export const ModelGetQuerySchema = z.object({ version: decimalInt(1, 1_000_000_000).optional() });

const AbsolutePath = z.string().min(1).max(4096).refine((p) => isAbsolute(p), 'must be an absolute path on the control-plane host');

export const ModelRegisterSchema = z
  .object({
    name: ModelNameSchema,
    /** Server-local ONNX file; it is copied into the registry. */
    file: AbsolutePath,
    kind: ModelKind,
    role: ModelRole.default('imported'),
    /** Default: `<name>-<recipeId>` (int8) or `<name>-fp32`. */
    id: ModelIdSchema.optional(),
    profileId: z.string().min(1).max(64).optional(),
    /** Default: the profile's recipe id. */
    recipeId: RecipeSchema.shape.id.optional(),
    centralAccuracy: z.number().min(0).max(1).optional(),
    companions: z
      .object({
        evalset: AbsolutePath.optional(),
        referencePredictions: AbsolutePath.optional(),
        fp32Baseline: z.object({ modelId: ModelIdSchema, version: z.number().int().min(1) }).strict().optional(),
      })
      .strict()
      .default({}),
  })
  .strict();
export type ModelRegister = z.infer<typeof ModelRegisterSchema>;
export type ModelRegisterInput = z.input<typeof ModelRegisterSchema>;

export const VerifyReportSchema = z.object({
  id: z.string(),
  version: z.number().int(),
  ok: z.boolean(),
  file: z.object({ path: z.string(), exists: z.boolean(), expectedSha256: z.string(), actualSha256: z.string().nullable(), expectedSize: z.number(), actualSize: z.number().nullable(), ok: z.boolean() }),
  signature: z.object({ ok: z.boolean(), algorithm: z.literal('ed25519') }),
  companions: z.array(z.object({ role: CompanionRole, path: z.string(), ok: z.boolean(), problem: z.string().nullable() })),
  problems: z.array(z.string()),
});
export type VerifyReport = z.infer<typeof VerifyReportSchema>;
