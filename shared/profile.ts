import { z } from 'zod';
import { RecipeSchema } from './recipe.ts';
import { err, ok, type Result } from './result.ts';

/** Rules over probed facts. Every rule given must hold; an empty rule set matches anything (the fallback). */
export const MatchRulesSchema = z
  .object({
    platform: z.array(z.string().min(1).max(32)).min(1).max(16).optional(),
    arch: z.array(z.string().min(1).max(32)).min(1).max(16).optional(),
    /** All of these CPU flags present. */
    cpuFlagsAll: z.array(z.string().min(1).max(64)).min(1).max(256).optional(),
    /** At least one of these CPU flags present. */
    cpuFlagsAny: z.array(z.string().min(1).max(64)).min(1).max(256).optional(),
    /** Jetson markers: /etc/nv_tegra_release present, or /proc/device-tree/model matching this pattern. */
    jetson: z.boolean().optional(),
    deviceTreeModelPattern: z
      .string()
      .max(256)
      .refine((p) => {
        try {
          new RegExp(p, 'i');
          return true;
        } catch {
          return false;
        }
      }, 'not a valid regular expression')
      .optional(),
  })
  .strict();

export const BenchmarkSettingsSchema = z
  .object({
    threads: z.number().int().min(1).max(256),
    warmupQueries: z.number().int().min(0).max(100_000),
    minQueries: z.number().int().min(1).max(1_000_000),
    minSeconds: z.number().min(0).max(3600),
    /** Hard stop so a slow device cannot benchmark forever. */
    maxSeconds: z.number().min(1).max(7200),
    throughputBatchSize: z.number().int().min(1).max(4096),
    /** Run ONNX Runtime's profiler to split time between integer and float kernels. */
    profileOps: z.boolean(),
  })
  .strict()
  .refine((b) => b.maxSeconds >= b.minSeconds, { message: 'maxSeconds must be at least minSeconds', path: ['maxSeconds'] });

/** When a device may evaluate a tuning candidate: only when idle enough, so the active model's work is not disturbed. */
export const EvaluationSettingsSchema = z
  .object({
    /** Start only while the 1-minute load average per core is at or below this. */
    maxLoadPerCore: z.number().min(0).max(1000),
    /** Give up (report failed: busy) after waiting this long for the load to drop. */
    idleWaitSeconds: z.number().int().min(0).max(24 * 3600),
  })
  .strict();
export const DEFAULT_EVALUATION_SETTINGS = { maxLoadPerCore: 0.7, idleWaitSeconds: 1800 } as const;

export const RuntimeSchema = z
  .object({
    engine: z.enum(['onnxruntime-cpu', 'tensorrt']),
    /** What runs when the engine is not on the device (TensorRT without trtexec). */
    fallback: z.enum(['onnxruntime-cpu']).optional(),
    trtexecArgs: z.array(z.string().max(256)).max(64).optional(),
  })
  .strict();

export const DeviceProfileSchema = z
  .object({
    id: z.string().max(64).regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes'),
    name: z.string().min(1).max(128),
    description: z.string().max(2000).default(''),
    /** Higher wins when several profiles match; the fallback has the lowest. */
    priority: z.number().int().min(0).max(1000),
    match: MatchRulesSchema,
    runtime: RuntimeSchema,
    recipe: RecipeSchema,
    benchmark: BenchmarkSettingsSchema,
    evaluation: EvaluationSettingsSchema.default(DEFAULT_EVALUATION_SETTINGS),
  })
  .strict();

export type EvaluationSettings = z.infer<typeof EvaluationSettingsSchema>;
export type MatchRules = z.infer<typeof MatchRulesSchema>;
export type BenchmarkSettings = z.infer<typeof BenchmarkSettingsSchema>;
export type DeviceProfile = z.infer<typeof DeviceProfileSchema>;

export type ProfileFile = { name: string; text: string };
export type ProfileLoadResult = Result<DeviceProfile[], string[]>;

/** Names the file and the field of each problem, e.g. `x86.json: recipe.activations.dtype: Invalid option`. */
export function parseProfileFiles(files: readonly ProfileFile[]): ProfileLoadResult {
  const errors: string[] = [];
  const profiles: DeviceProfile[] = [];
  const seen = new Map<string, string>();
  for (const file of files) {
    let json: unknown;
    try {
      json = JSON.parse(file.text);
    } catch (e) {
      errors.push(`${file.name}: not valid JSON (${(e as Error).message})`);
      continue;
    }
    const parsed = DeviceProfileSchema.safeParse(json);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        errors.push(`${file.name}: ${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`);
      }
      continue;
    }
    const expectedId = file.name.replace(/\.json$/, '');
    if (parsed.data.id !== expectedId) {
      errors.push(`${file.name}: id: "${parsed.data.id}" must equal the file name "${expectedId}"`);
      continue;
    }
    const other = seen.get(parsed.data.id);
    if (other) {
      errors.push(`${file.name}: id: "${parsed.data.id}" already defined in ${other}`);
      continue;
    }
    seen.set(parsed.data.id, file.name);
    profiles.push(parsed.data);
  }
  if (errors.length) return err(errors);
  if (!profiles.some((p) => Object.keys(p.match).length === 0)) {
    return err(['(profiles): no fallback profile (one with empty match rules) is defined']);
  }
  return ok(profiles);
}
