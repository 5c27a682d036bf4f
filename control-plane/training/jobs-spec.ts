import { randomBytes } from 'node:crypto';
import { canonicalJson } from '../../shared/signing.ts';
import type { DeviceProfile } from '../../shared/profile.ts';
import type { Recipe } from '../../shared/recipe.ts';
import type { TrainingJobCreate } from '../../shared/registry.ts';
import { TrainingJobSpecSchema, type TrainingJobSpec } from '../../shared/training.ts';
import { formatZodError } from '../../shared/messages.ts';
import type { FieldError, Result } from '../../shared/result.ts';

export type BuiltSpec = Result<{ spec: TrainingJobSpec; profileMap: Record<string, string | null> }, FieldError>;

/** `job-<utc yyyymmddhhmmss>-<hex>`: sortable, and inside the trainer's jobId alphabet. */
export function newJobId(now: number): string {
  const t = new Date(now).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `job-${t}-${randomBytes(3).toString('hex')}`;
}

/**
 * Turns an HTTP job request into the trainer's job spec: profiles bring their recipes, explicit recipes
 * join them (one per id), hyperparameters fill the rest. Pure: the profiles are passed in.
 */
export function buildTrainerSpec(req: TrainingJobCreate, profiles: readonly DeviceProfile[], jobId: string, outputDir: string): BuiltSpec {
  const recipes = new Map<string, Recipe>();
  const profileMap: Record<string, string | null> = {};
  const add = (r: Recipe, field: string, profileId: string | null): BuiltSpec | null => {
    const seen = recipes.get(r.id);
    if (seen && canonicalJson(seen) !== canonicalJson(r)) {
      return { ok: false, error: { field, message: `recipe id "${r.id}" is given twice with different settings` } };
    }
    recipes.set(r.id, r);
    if (profileMap[r.id] == null) profileMap[r.id] = profileId;
    return null;
  };
  for (const [i, pid] of (req.profiles ?? []).entries()) {
    const p = profiles.find((x) => x.id === pid);
    if (!p) return { ok: false, error: { field: `profiles.${i}`, message: `unknown profile "${pid}" (known: ${profiles.map((x) => x.id).join(', ')})` } };
    const bad = add(p.recipe, `profiles.${i}`, p.id);
    if (bad) return bad;
  }
  for (const [i, r] of (req.recipes ?? []).entries()) {
    // an explicit recipe that is some profile's recipe is delivered to that profile
    const owner = profiles.find((p) => p.recipe.id === r.id)?.id ?? null;
    const bad = add(r, `recipes.${i}`, owner);
    if (bad) return bad;
  }

  const hp = req.hyperparameters;
  const input = {
    jobId,
    outputDir,
    ...(hp.device !== undefined ? { device: hp.device } : {}),
    ...(hp.seed !== undefined ? { seed: hp.seed } : {}),
    ...(hp.threads !== undefined ? { threads: hp.threads } : {}),
    ...(hp.limits !== undefined ? { limits: hp.limits } : {}),
    ...(hp.validationSplit !== undefined ? { validationSplit: hp.validationSplit } : {}),
    ...(hp.evalSetSize !== undefined ? { evalSetSize: hp.evalSetSize } : {}),
    ...(hp.ptq !== undefined ? { ptq: hp.ptq } : {}),
    ...(hp.mixedPrecision !== undefined ? { mixedPrecision: hp.mixedPrecision } : {}),
    dataset: req.dataset,
    teacher: req.teacher,
    student: req.student,
    training: hp.training ?? {},
    distill: hp.distill ?? {},
    qat: hp.qat ?? {},
    recipes: [...recipes.values()],
  };
  const parsed = TrainingJobSpecSchema.safeParse(input);
  if (!parsed.success) {
    // the body schema already checked each part; what is left is how they combine
    const first = parsed.error.issues[0];
    const at = first?.path.length ? first.path.join('.') : '(root)';
    return { ok: false, error: { field: ['training', 'distill', 'qat', 'ptq', 'mixedPrecision'].includes(String(first?.path[0])) ? `hyperparameters.${at}` : at, message: formatZodError(parsed.error) } };
  }
  return { ok: true, value: { spec: parsed.data, profileMap } };
}
