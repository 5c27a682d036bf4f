import { z } from 'zod';
import { RecipeSchema } from './recipe.ts';
import { err, ok, type Result } from './result.ts';

/**
 * The trainer's contract: the job spec it reads (JSON, --spec file or stdin) and every JSON line it
 * writes on stdout. Mirrors control-plane/trainer/edgefleet_trainer/spec.py and cli.py.
 */

/** Bounded so a job spec cannot ask for a practically endless job or overflow the trainer (issue 8 item 6). */
const PositiveInt = z.number().int().min(1).max(1_000_000_000);
const NonNegInt = z.number().int().min(0).max(1_000_000_000);


const DataPath = z.string().min(1).max(4096);
const ImageSize = z.tuple([z.number().int().min(8).max(4096), z.number().int().min(8).max(4096)]);
const Channels = z.union([z.literal(1), z.literal(3)]);

/**
 * Where a job's data comes from. Besides the built-in Fashion-MNIST: IDX files, an NPZ (N x H x W, N x C x H x W or
 * channels-last N x H x W x C; integer or string labels), an ImageFolder tree (one sub-folder of PNG/JPEG images per
 * class, optionally train/ and test/ under the root) and CSV (a label column plus pixel columns, or a column of image
 * paths). String labels and folder names become class ids in sorted order; the names travel with the model.
 */
export const DatasetSpecSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('fashion-mnist'), path: DataPath.optional() }).strict(),
  z
    .object({
      kind: z.literal('npz'),
      path: DataPath,
      /** auto: N x H x W x C with 1, 3 or 4 trailing channels is read as channels-last. */
      layout: z.enum(['auto', 'nchw', 'nhwc']).optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('imagefolder'),
      path: DataPath,
      /** A second tree for the test split (else train/ and test/ under path, else 20% held out). */
      testPath: DataPath.optional(),
      /** [H, W]: every image is resized to it (else all images must share the first one's size). */
      imageSize: ImageSize.optional(),
      channels: Channels.optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('csv'),
      path: DataPath,
      testPath: DataPath.optional(),
      labelColumn: z.string().min(1).max(128).optional(),
      /** A column of image paths (relative to the CSV's folder) instead of pixel columns. */
      imageColumn: z.string().min(1).max(128).optional(),
      /** Pixel columns: [H, W] or [C, H, W] (else a square grey or RGB image is inferred from the column count). */
      imageShape: z.union([z.tuple([z.number().int().min(1).max(4096), z.number().int().min(1).max(4096)]), z.tuple([z.number().int().min(1).max(4), z.number().int().min(1).max(4096), z.number().int().min(1).max(4096)])]).optional(),
      imageSize: ImageSize.optional(),
      channels: Channels.optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('idx'),
      trainImages: DataPath,
      trainLabels: DataPath,
      testImages: DataPath,
      testLabels: DataPath,
    })
    .strict(),
]);

export const TeacherArch = z.enum(['resnet-teacher', 'torchvision-resnet18', 'torchvision-mobilenet_v2']);
export const StudentArch = z.enum(['compact-cnn', 'mobilenetv2-mini']);

export const TeacherSpecSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('zoo'),
      arch: TeacherArch.default('resnet-teacher'),
      width: z.number().positive().max(8).default(1),
      epochs: NonNegInt.default(1),
      /** Residual blocks per stage (resnet-teacher). */
      depth: z.number().int().min(1).max(8).default(2),
    })
    .strict(),
  z.object({ kind: z.literal('torchscript'), path: DataPath }).strict(),
]);

export const StudentSpecSchema = z.discriminatedUnion('kind', [
  z
    .object({ kind: z.literal('zoo'), arch: StudentArch.default('compact-cnn'), width: z.number().positive().max(8).default(1) })
    .strict(),
  z
    .object({
      kind: z.literal('file'),
      /** `path/to/file.py:ClassName`; the constructor may take num_classes, in_channels, width. */
      path: z.string().max(4096).regex(/^.+\.py:[A-Za-z_][A-Za-z0-9_]*$/, 'file.py:ClassName'),
      width: z.number().positive().max(8).optional(),
    })
    .strict(),
]);

export const TrainingJobSpecSchema = z
  .object({
    jobId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/),
    outputDir: DataPath,
    device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
    seed: NonNegInt.default(0),
    /** torch intra-op threads; default: all cores. */
    threads: PositiveInt.max(256).optional(),
    dataset: DatasetSpecSchema,
    limits: z.object({ trainSamples: PositiveInt.optional(), testSamples: PositiveInt.optional() }).strict().optional(),
    validationSplit: z.number().min(0).max(0.5).default(0),
    teacher: TeacherSpecSchema,
    student: StudentSpecSchema,
    training: z
      .object({
        batchSize: PositiveInt.max(65536).default(128),
        lr: z.number().positive().max(10).default(0.05),
        optimizer: z.enum(['sgd', 'adamw']).default('sgd'),
        weightDecay: z.number().min(0).max(1).default(5e-4),
        /**
         * Absent: what suits the dataset (Fashion-MNIST: 2 px translation + horizontal flip; any other dataset: none,
         * since a mirrored digit or letter is another class). true: that default, or a 2 px translation where there is
         * none; false: none; or exactly {translate, flip}.
         */
        augment: z.union([z.boolean(), z.object({ translate: z.number().int().min(0).max(8).default(0), flip: z.boolean().default(false) }).strict()]).optional(),
        /** Baseline: the student trained on hard labels only (0 = skip). */
        studentHardEpochs: NonNegInt.default(0),
      })
      .strict(),
    distill: z
      .object({
        temperature: z.number().positive().max(100).default(4),
        alpha: z.number().min(0).max(1).default(0.7),
        epochs: NonNegInt.default(1),
      })
      .strict(),
    qat: z
      .object({
        epochs: NonNegInt.default(1),
        lr: z.number().positive().max(10).optional(),
        freezeObserversAfterEpochs: z.number().min(0).max(100_000).default(1),
        freezeBnAfterEpochs: z.number().min(0).max(100_000).default(0.5),
      })
      .strict(),
    ptq: z.object({ enabled: z.boolean().default(true), calibrationBatches: PositiveInt.default(8) }).strict().optional(),
    recipes: z.array(RecipeSchema).min(1).max(64),
    mixedPrecision: z
      .object({
        enabled: z.boolean().default(false),
        maxAccuracyDrop: z.number().min(0).max(1).default(0.01),
        maxFloatLayers: NonNegInt.default(4),
      })
      .strict()
      .optional(),
    evalSetSize: PositiveInt.max(1_000_000).default(1000),
  })
  .strict();

export type TrainingJobSpec = z.infer<typeof TrainingJobSpecSchema>;
/** What a caller writes (defaults not yet applied). */
export type TrainingJobSpecInput = z.input<typeof TrainingJobSpecSchema>;

// ------------------------------------------------------------------ output lines

export const TrainingPhase = z.enum(['teacher', 'student-hard', 'distill', 'qat', 'ptq', 'export', 'evaluate']);
export type TrainingPhase = z.infer<typeof TrainingPhase>;

const Num = z.number();

export const ProgressLineSchema = z.object({
  type: z.literal('progress'),
  jobId: z.string().optional(),
  phase: TrainingPhase,
  recipeId: z.string().optional(),
  epoch: NonNegInt,
  epochs: NonNegInt,
  step: NonNegInt,
  totalSteps: NonNegInt,
  loss: Num.nullable(),
  accuracy: Num.min(0).max(1).nullable(),
  lr: Num.nullable(),
  etaSeconds: Num.min(0).nullable(),
  /** The whole job's estimate: remaining planned steps of every phase left x the current phase's seconds per step. */
  jobEtaSeconds: Num.min(0).nullable().optional(),
  /** Planned training steps done across all phases, 0..1. */
  jobProgress: Num.min(0).max(1).nullable().optional(),
});

export const LogLineSchema = z.object({
  type: z.literal('log'),
  jobId: z.string().optional(),
  level: z.enum(['debug', 'info', 'warn', 'error']),
  message: z.string(),
  fields: z.record(z.string(), z.unknown()).optional(),
});

export const ArtifactKind = z.enum([
  'teacher-fp32',
  'student-fp32',
  'student-hard-fp32',
  'student-int8-qat',
  'student-int8-ptq',
  'evalset',
]);
export type ArtifactKind = z.infer<typeof ArtifactKind>;

export const ArtifactLineSchema = z.object({
  type: z.literal('artifact'),
  jobId: z.string().optional(),
  kind: ArtifactKind,
  recipeId: z.string().optional(),
  /** Relative to the job's outputDir. */
  file: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sizeBytes: NonNegInt,
  /** Top-1 of the PyTorch model on the shipped eval set. */
  accuracy: Num.min(0).max(1).optional(),
  inputShape: z.array(PositiveInt),
  /** One u8 class index per eval-set sample: the PyTorch model's top-1, for device agreement checks. */
  referencePredictionsFile: z.string().optional(),
  /** Layers the mixed-precision search kept in float (int8 artifacts). */
  floatLayers: z.array(z.string()).optional(),
  count: NonNegInt.optional(),
  numClasses: PositiveInt.optional(),
  /** Class names by class id (string labels, folder names, Fashion-MNIST's): reports show names, not ids. */
  classNames: z.array(z.string().max(256)).max(256).optional(),
});

/** What the job trained on, as the trainer read it. */
export const DatasetInfoSchema = z.object({
  name: z.string(),
  numClasses: PositiveInt,
  inputShape: z.array(PositiveInt),
  trainSamples: NonNegInt,
  valSamples: NonNegInt,
  testSamples: NonNegInt,
  classNames: z.array(z.string().max(256)).max(256).optional(),
  augment: z.object({ translate: NonNegInt, flip: z.boolean() }),
});
export type DatasetInfo = z.infer<typeof DatasetInfoSchema>;

/** The submit-time look at a dataset (`python3 -m edgefleet_trainer.inspect_dataset`): headers and a sample. */
export const DatasetSummarySchema = z.object({
  type: z.literal('dataset-summary'),
  format: z.string(),
  trainSamples: NonNegInt,
  /** null: no separate test data; 20% of the training data is held out. */
  testSamples: NonNegInt.nullable(),
  inputShape: z.array(PositiveInt),
  labelKind: z.enum(['integers', 'names']),
  testSource: z.enum(['file', 'holdout']),
  classNames: z.array(z.string().max(256)).max(256).optional(),
  classCounts: z.array(NonNegInt).max(256).optional(),
});
export type DatasetSummary = z.infer<typeof DatasetSummarySchema>;

export const LayerDiagnosticSchema = z.object({
  layer: z.string(),
  opType: z.string(),
  quantized: z.boolean(),
  /** This layer's own error: same quantized input, float vs quantized weights/output. */
  sqnrDb: Num,
  cosine: Num,
  /** Error accumulated from the input: quantized model vs float model at this layer. */
  accumulatedSqnrDb: Num,
  accumulatedCosine: Num,
  activationMin: Num,
  activationMax: Num,
  activationP999: Num,
  outlierRatio: Num.nullable(),
  outlier: z.boolean(),
  scale: Num.optional(),
  zeroPoint: z.number().int().optional(),
});

export const MixedPrecisionInfoSchema = z.object({
  budget: Num,
  fp32Accuracy: Num,
  int8Accuracy: Num,
  floatLayers: z.array(z.string()),
  tried: z.array(z.object({ floatLayers: z.array(z.string()), accuracy: Num })),
  decision: z.string(),
});

export const RecipeDiagnosticsSchema = z.object({
  layers: z.array(LayerDiagnosticSchema),
  outlierLayers: z.array(z.string()),
  quantizedLayers: z.array(z.string()),
  floatLayers: z.array(z.string()),
  mixedPrecision: MixedPrecisionInfoSchema.optional(),
});

export const RecipeMetricsSchema = z.object({
  qatInt8: Num.nullable(),
  ptqInt8: Num.nullable(),
  floatLayers: z.array(z.string()),
  /** fp32 student accuracy on the split used for decisions (validation, else test). */
  fp32Selection: Num.optional(),
});

/**
 * A finding the trainer wants the operator to see (also sent as a warn log line when it happens):
 * `distillation-worse-than-hard-labels` (the hard-label student went forward instead),
 * `ops-kept-float` (a recipe has no int8 form for these ops; `recipeId`, `ops` name them).
 */
export const TrainerWarningSchema = z
  .object({
    code: z.string().min(1).max(64),
    message: z.string().max(4000),
    recipeId: z.string().max(64).optional(),
    ops: z.array(z.string().max(200)).max(10_000).optional(),
  })
  .passthrough();
export type TrainerWarning = z.infer<typeof TrainerWarningSchema>;

export const ResultLineSchema = z.object({
  type: z.literal('result'),
  jobId: z.string().optional(),
  metrics: z.object({
    teacherFp32: Num,
    /** Test top-1 of the fp32 student that went forward to quantization (see studentChosen). */
    studentFp32: Num,
    studentHardFp32: Num.optional(),
    /** Test top-1 of the distilled student, whether or not it went forward. */
    studentDistilledFp32: Num.optional(),
    /** Which fp32 student went forward: the distilled one, or the hard-label one when it was better on the selection split. */
    studentChosen: z.enum(['distilled', 'hard-label']).optional(),
    recipes: z.record(z.string(), RecipeMetricsSchema),
  }),
  diagnostics: z.record(z.string(), RecipeDiagnosticsSchema),
  warnings: z.array(TrainerWarningSchema).default([]),
  versions: z.object({ torch: z.string(), python: z.string(), onnx: z.string(), trainer: z.string() }),
  durations: z.record(z.string(), z.unknown()),
  dataset: DatasetInfoSchema.optional(),
  artifacts: z.array(
    z.object({
      kind: ArtifactKind,
      file: z.string(),
      recipeId: z.string().optional(),
      sha256: z.string(),
      sizeBytes: NonNegInt,
    }),
  ),
});

export const TrainerErrorCode = z.enum(['bad-dataset', 'bad-spec', 'out-of-memory', 'internal', 'cancelled']);

export const ErrorLineSchema = z.object({
  type: z.literal('error'),
  jobId: z.string().optional(),
  code: TrainerErrorCode,
  message: z.string(),
  /** The spec field at fault (e.g. `teacher.path`), when one is. */
  field: z.string().optional(),
});

export const TrainerLineSchema = z.discriminatedUnion('type', [
  ProgressLineSchema,
  LogLineSchema,
  ArtifactLineSchema,
  ResultLineSchema,
  ErrorLineSchema,
]);

export type ProgressLine = z.infer<typeof ProgressLineSchema>;
export type LogLine = z.infer<typeof LogLineSchema>;
export type ArtifactLine = z.infer<typeof ArtifactLineSchema>;
export type ResultLine = z.infer<typeof ResultLineSchema>;
export type ErrorLine = z.infer<typeof ErrorLineSchema>;
export type TrainerLine = z.infer<typeof TrainerLineSchema>;
export type LayerDiagnostic = z.infer<typeof LayerDiagnosticSchema>;

export type ParsedTrainerLine = Result<TrainerLine>;

/** Parse one stdout line of the trainer. Never throws. */
export function parseTrainerLine(line: string): ParsedTrainerLine {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return err('not JSON');
  }
  const r = TrainerLineSchema.safeParse(raw);
  if (r.success) return ok(r.data);
  return err(z.prettifyError(r.error));
}
