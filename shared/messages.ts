import { z } from 'zod';
import { DeviceIdSchema, ModelIdSchema, ProfileIdSchema, RecipeIdSchema, RolloutIdSchema, TransferIdSchema, TuningIdSchema } from './ids.ts';
import { DeviceFactsSchema } from './facts.ts';
import { BenchmarkSettingsSchema, EvaluationSettingsSchema } from './profile.ts';
import { err, ok, type Result } from './result.ts';

/** Every MQTT message carries the contract version, a unique id (for de-duplication of QoS 1 re-deliveries) and a time. */
export const PROTOCOL_VERSION = 1 as const;

/**
 * Plausible ranges (issue 8 item 7): a device's numbers are bounded so one report cannot move an aggregate by orders of
 * magnitude; the bounds are far above anything real hardware measures.
 */
const MAX_TS = 4_102_444_800_000; // 2100-01-01
const MAX_VERSION = 1_000_000_000;
const MAX_BYTES = 2 ** 50; // 1 PiB
const MAX_MODEL_BYTES = 16 * 1024 ** 3;
const MAX_MS = 3_600_000; // one hour per query or session
const MsValue = z.number().nonnegative().max(MAX_MS);
/** 16 GiB at the smallest chunk (1 KiB) would be 16 M chunks; real transfers use >= 64 KiB chunks. */
const MAX_CHUNKS = 1_048_576;

const envelope = {
  v: z.literal(PROTOCOL_VERSION),
  msgId: z.string().min(8).max(64),
  ts: z.number().int().nonnegative().max(MAX_TS),
};

const ModelRefSchema = z.object({ modelId: ModelIdSchema, version: z.number().int().min(1).max(MAX_VERSION) });
export type ModelRef = z.infer<typeof ModelRefSchema>;

export const BirthSchema = z.object({
  ...envelope,
  type: z.literal('birth'),
  deviceId: DeviceIdSchema,
  agentVersion: z.string().min(1).max(32),
  facts: DeviceFactsSchema,
  /** A profile the agent was told to claim (`--profile`); the control plane treats it as a request, an operator override still wins. */
  profileHint: z.string().max(64).nullable().default(null),
  currentModel: ModelRefSchema.nullable().default(null),
  /** Counts (re)connects of this agent process; lets the control plane see flapping. */
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
});

export const StatusSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  state: z.enum(['online', 'offline']),
  ts: z.number().int().nonnegative().max(MAX_TS),
});

export const HeartbeatSchema = z.object({
  ...envelope,
  type: z.literal('heartbeat'),
  agentVersion: z.string().min(1).max(32),
  uptimeSeconds: z.number().nonnegative().max(100 * 365 * 24 * 3600),
  load1: z.number().nonnegative().max(1_000_000),
  cpuPercent: z.number().min(0).max(100).nullable(),
  memUsedBytes: z.number().int().nonnegative().max(MAX_BYTES),
  memTotalBytes: z.number().int().nonnegative().max(MAX_BYTES),
  temperatureC: z.number().min(-100).max(250).nullable(),
  activeModel: ModelRefSchema.nullable(),
});

/** What a device needs to fetch, verify and benchmark one model. Signed by the control plane (ed25519 over `canonicalJson(manifest without signature)`). */
export const ModelManifestSchema = z.object({
  modelId: ModelIdSchema,
  version: z.number().int().min(1).max(MAX_VERSION),
  profileId: ProfileIdSchema,
  recipeId: RecipeIdSchema,
  kind: z.enum(['int8', 'fp32']),
  sizeBytes: z.number().int().positive().max(MAX_MODEL_BYTES),
  chunkSize: z.number().int().min(1024).max(8 * 1024 * 1024),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  chunkSha256: z.array(z.string().regex(/^[0-9a-f]{64}$/)).min(1).max(MAX_CHUNKS),
  /** Baseline and eval files fetched the same way (fp32 student, eval set, reference predictions). */
  companions: z
    .array(
      z.object({
        role: z.enum(['fp32-baseline', 'evalset', 'reference-predictions']),
        transferId: TransferIdSchema,
        sizeBytes: z.number().int().positive().max(MAX_MODEL_BYTES),
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
        chunkSha256: z.array(z.string().regex(/^[0-9a-f]{64}$/)).min(1).max(MAX_CHUNKS),
      }),
    )
    .max(8)
    .default([]),
  transferId: TransferIdSchema,
  benchmark: BenchmarkSettingsSchema,
  runtime: z.enum(['onnxruntime-cpu', 'tensorrt']),
  centralAccuracy: z.number().min(0).max(1).nullable(),
  expiresAt: z.number().int().positive().max(MAX_TS),
  signature: z.string().min(1).max(256),
});
export type ModelManifest = z.infer<typeof ModelManifestSchema>;

export const CommandSchema = z.discriminatedUnion('cmd', [
  z.object({ ...envelope, cmd: z.literal('rebirth') }),
  z.object({ ...envelope, cmd: z.literal('deploy'), rolloutId: RolloutIdSchema.nullable(), manifest: ModelManifestSchema }),
  z.object({ ...envelope, cmd: z.literal('benchmark'), model: ModelRefSchema }),
  z.object({ ...envelope, cmd: z.literal('rollback'), rolloutId: RolloutIdSchema.nullable(), to: ModelRefSchema.nullable() }),
  /** Download, benchmark on the eval set, report, delete; never activate (tuning canaries). */
  z.object({ ...envelope, cmd: z.literal('evaluate'), tuningId: TuningIdSchema, manifest: ModelManifestSchema, idle: EvaluationSettingsSchema }),
]);
export type Command = z.infer<typeof CommandSchema>;

export const InstallStateSchema = z.enum(['queued', 'downloading', 'verifying', 'benchmarking', 'active', 'failed', 'rolled-back']);
export type InstallState = z.infer<typeof InstallStateSchema>;

export const LatencyStatsSchema = z
  .object({
    p50: MsValue,
    p90: MsValue,
    p99: MsValue,
    mean: MsValue,
    min: MsValue,
    max: MsValue,
    count: z.number().int().nonnegative().max(100_000_000),
  })
  // order statistics that contradict each other are not a measurement
  .refine((l) => l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max && l.min <= l.mean && l.mean <= l.max, { message: 'latency statistics out of order (min <= p50 <= p90 <= p99 <= max, min <= mean <= max)' });

export const BenchmarkResultSchema = z.object({
  runtime: z.enum(['onnxruntime-cpu', 'tensorrt']),
  threads: z.number().int().positive().max(1024),
  sessionCreateMs: MsValue,
  latencyMs: LatencyStatsSchema,
  throughputPerSecond: z.number().nonnegative().max(100_000_000),
  throughputBatchSize: z.number().int().positive().max(4096),
  peakRssBytes: z.number().int().nonnegative().max(MAX_BYTES),
  fileSizeBytes: z.number().int().nonnegative().max(MAX_MODEL_BYTES),
  accuracy: z.number().min(0).max(1).nullable(),
  agreement: z.number().min(0).max(1).nullable(),
  integerKernelShare: z.number().min(0).max(1).nullable(),
  topOps: z.array(z.object({ op: z.string().max(128), ms: MsValue, share: z.number().min(0).max(1) })).max(10).default([]),
});
export type BenchmarkResult = z.infer<typeof BenchmarkResultSchema>;

export const EvaluationReportState = z.enum(['queued', 'waiting-for-idle', 'downloading', 'benchmarking', 'done', 'failed']);

/** Progress and outcome of one `evaluate` command; `done` carries the result, `failed` the reason. Terminal states are sent after the files are deleted. */
export const EvaluationReportSchema = z.object({
  ...envelope,
  kind: z.literal('evaluation'),
  tuningId: TuningIdSchema,
  model: ModelRefSchema,
  state: EvaluationReportState,
  result: BenchmarkResultSchema.nullable().default(null),
  reason: z.string().max(1000).nullable().default(null),
  /** The 1-minute load average per core when the evaluation started (or while it waited). */
  loadPerCore: z.number().min(0).max(10_000).nullable().default(null),
});
export type EvaluationReport = z.infer<typeof EvaluationReportSchema>;

export const ReportSchema = z.discriminatedUnion('kind', [
  z.object({
    ...envelope,
    kind: z.literal('install-state'),
    rolloutId: RolloutIdSchema.nullable(),
    model: ModelRefSchema,
    state: InstallStateSchema,
    progress: z.number().min(0).max(1).nullable().default(null),
    reason: z.string().max(500).nullable().default(null),
  }),
  z.object({
    ...envelope,
    kind: z.literal('benchmark'),
    rolloutId: RolloutIdSchema.nullable(),
    model: ModelRefSchema,
    result: BenchmarkResultSchema,
    baseline: BenchmarkResultSchema.nullable(),
  }),
  EvaluationReportSchema,
]);
export type Report = z.infer<typeof ReportSchema>;

export const XferRequestSchema = z.object({
  ...envelope,
  transferId: TransferIdSchema,
  chunks: z.array(z.number().int().nonnegative().max(MAX_CHUNKS)).min(1).max(1024),
  /**
   * Absent: send these chunks to me (`devices/{id}/xfer/data`). Otherwise the agent listens on
   * `transfers/{transferId}/data`, and chunks no one asked for yet in this wave are published there once. `join`: the
   * first ask since it (re)subscribed (chunks published before it go to it alone); `next`: later first asks;
   * `repair`: asked before (lost, corrupt, timed out): sent to it alone unless about to go out on the shared topic.
   */
  fanout: z.enum(['join', 'next', 'repair']).optional(),
});
export type XferRequest = z.infer<typeof XferRequestSchema>;

export const EnrollRequestSchema = z.object({
  ...envelope,
  deviceId: DeviceIdSchema,
  /** The full enrollment token, checked again here (expiry, use count) even though the broker let the client in. */
  token: z.string().min(1).max(256),
  /** The device chooses its own secret, so the answer carries nothing worth overhearing. */
  password: z.string().min(32).max(256),
  agentVersion: z.string().min(1).max(32),
});

export const EnrollResponseSchema = z.discriminatedUnion('ok', [
  z.object({ v: z.literal(PROTOCOL_VERSION), ok: z.literal(true), deviceId: DeviceIdSchema, signingPublicKey: z.string().max(1024) }),
  z.object({ v: z.literal(PROTOCOL_VERSION), ok: z.literal(false), error: z.string().max(1000) }),
]);

export type Birth = z.infer<typeof BirthSchema>;
export type Status = z.infer<typeof StatusSchema>;
export type Heartbeat = z.infer<typeof HeartbeatSchema>;
export type EnrollRequest = z.infer<typeof EnrollRequestSchema>;
export type EnrollResponse = z.infer<typeof EnrollResponseSchema>;

export type ParseResult<T> = Result<T>;

/** Parses a raw MQTT payload: JSON first, then the schema; the error names the first bad field. */
export function parsePayload<T>(schema: z.ZodType<T>, payload: Uint8Array | string): ParseResult<T> {
  let json: unknown;
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'));
  } catch {
    return err('payload is not valid JSON');
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return ok(parsed.data);
  return err(formatZodError(parsed.error));
}

export function formatZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

export function newMsgId(): string {
  return globalThis.crypto.randomUUID();
}
