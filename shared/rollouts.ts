import { z } from 'zod';
import { ModelIdSchema, ProfileIdSchema } from './ids.ts';

/** HTTP bodies of rollouts. A rollout sends one model version per profile to the targeted devices, in waves, behind gates. */

const ModelVersionRef = z.object({ modelId: ModelIdSchema, version: z.number().int().min(1).max(1_000_000_000) }).strict();

export const WavesSchema = z
  .object({
    /** The first wave: a device count or a percentage of the targeted devices (at least one device). */
    canary: z.union([z.object({ count: z.number().int().min(1).max(1_000_000) }).strict(), z.object({ percent: z.number().gt(0).max(100) }).strict()]).default({ count: 1 }),
    /** After the canary: cumulative percentages ending at 100, or an exponential growth factor. */
    then: z
      .union([
        z
          .object({ percents: z.array(z.number().gt(0).max(100)).min(1).max(100) })
          .strict()
          .refine((w) => w.percents.every((p, i) => i === 0 || p > w.percents[i - 1]!) && w.percents.at(-1) === 100, {
            message: 'percents must increase and end at 100',
            path: ['percents'],
          }),
        z.object({ factor: z.number().min(1.5).max(10) }).strict(),
      ])
      .default({ percents: [100] }),
  })
  .strict();

export const GatesSchema = z
  .object({
    /** Stop when more than this share of the finished devices of a wave failed... */
    maxFailurePercent: z.number().min(0).max(100).default(20),
    /** ...once at least this many of its devices have finished. */
    minFinished: z.number().int().min(1).max(1_000_000).default(1),
    /** A device whose p50 is more than this much slower than on its previous model counts as failed. */
    maxLatencyRegressionPercent: z.number().min(0).max(100_000).nullable().default(null),
    /** A device whose eval-set accuracy is more than this (absolute, 0..1) below the central int8 accuracy counts as failed. */
    maxAccuracyDrop: z.number().min(0).max(1).nullable().default(null),
    /**
     * An absolute floor (0..1): a device whose eval-set accuracy (or, when the device cannot measure it,
     * the model's central accuracy) is below it counts as failed. The relative gate above passes a model
     * that is equally bad everywhere; this one does not.
     */
    minAccuracy: z.number().min(0).max(1).nullable().default(null),
    /** A device that has not reached active or failed this long after its deploy is timed out (a failure). */
    deviceTimeoutSeconds: z.number().int().min(5).max(7 * 24 * 3600).default(1800),
  })
  .strict();

export const RolloutCreateSchema = z
  .object({
    name: z.string().max(128).default(''),
    /** One model version per profile. */
    models: z.array(ModelVersionRef.extend({ profileId: ProfileIdSchema }).strict()).min(1).max(64),
    /** Only devices with these labels (all must match). */
    labels: z.record(z.string().min(1).max(63), z.string().max(128)).refine((r) => Object.keys(r).length <= 64, 'at most 64 labels').default({}),
    waves: WavesSchema.default({ canary: { count: 1 }, then: { percents: [100] } }),
    gates: GatesSchema.default({ maxFailurePercent: 20, minFinished: 1, maxLatencyRegressionPercent: null, maxAccuracyDrop: null, minAccuracy: null, deviceTimeoutSeconds: 1800 }),
    /** When a gate trips, roll the devices already on the new model back to their previous one. */
    rollbackOnAbort: z.boolean().default(true),
  })
  .strict()
  .refine((r) => new Set(r.models.map((m) => m.profileId)).size === r.models.length, { message: 'one model per profile', path: ['models'] });

export type Waves = z.infer<typeof WavesSchema>;
export type Gates = z.infer<typeof GatesSchema>;
export type RolloutCreate = z.infer<typeof RolloutCreateSchema>;
