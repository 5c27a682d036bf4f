import { z } from 'zod';
import { BenchmarkResultSchema } from '../messages.ts';
import { Millis } from './common.ts';

/** Answers of /deliveries, /devices/:id/installs and /transfers/:id. */

export const DeliveryCreatedSchema = z.object({
  deliveryId: z.string(),
  deviceId: z.string(),
  model: z.object({ modelId: z.string(), version: z.number().int() }),
  transferId: z.string(),
  sizeBytes: z.number().int(),
  sha256: z.string(),
  companions: z.array(z.object({ role: z.string(), transferId: z.string(), sizeBytes: z.number().int() })),
  expiresAt: Millis,
});

export const InstallViewSchema = z.object({
  deviceId: z.string(),
  modelId: z.string(),
  version: z.number().int(),
  deliveryId: z.string(),
  rolloutId: z.string().nullable(),
  transferId: z.string(),
  /** queued | downloading | verifying | benchmarking | active | failed | rolled-back, or `sent` before the agent answers. */
  state: z.string(),
  progress: z.number().nullable(),
  reason: z.string().nullable(),
  createdAt: Millis,
  updatedAt: Millis,
});

export const InstallEventSchema = z.object({ modelId: z.string(), version: z.number().int(), rolloutId: z.string().nullable(), state: z.string(), progress: z.number().nullable(), reason: z.string().nullable(), at: Millis });

export const BenchmarkViewSchema = z.object({
  id: z.number().int(),
  deviceId: z.string(),
  modelId: z.string(),
  version: z.number().int(),
  rolloutId: z.string().nullable(),
  result: BenchmarkResultSchema,
  /** The fp32 baseline the device measured beside the model, when the delivery had one. */
  baseline: BenchmarkResultSchema.nullable(),
  /** Baseline p50 / model p50: above 1 the model is faster. */
  speedup: z.number().nullable(),
  at: Millis,
});

export const DeviceInstallsSchema = z.object({
  deviceId: z.string(),
  /** Latest state of each model version on the device, newest first. */
  installs: z.array(InstallViewSchema),
  /** State changes, newest first. */
  history: z.array(InstallEventSchema),
  /** Benchmark reports, newest first. */
  benchmarks: z.array(BenchmarkViewSchema),
});

export const TransferViewSchema = z.object({
  id: z.string(),
  path: z.string(),
  sizeBytes: z.number().int(),
  chunkSize: z.number().int(),
  chunks: z.number().int(),
  sha256: z.string(),
  chunkSha256: z.array(z.string()),
  createdAt: Millis,
});

export type DeviceInstalls = z.infer<typeof DeviceInstallsSchema>;
