import { randomBytes } from 'node:crypto';
import type { DeviceProfile } from '../../shared/profile.ts';
import type { Recipe } from '../../shared/recipe.ts';
import type { TuningCreate } from '../../shared/tuning.ts';

/** `tun-<utc yyyymmddhhmmss>-<hex>`: sortable. */
export function newTuningId(now: number): string {
  return `tun-${new Date(now).toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
}

export type CandidatePlan = { key: string; recipe: Recipe | null; configured: boolean; why: string };

/**
 * The candidate set of one profile: its recipe, variants of it, and the fp32 student. Pure.
 * - weight granularity flipped (per-channel <-> per-tensor);
 * - reduce_range flipped where it matters: u8 activations, whose u8×s8 products go through x86's
 *   16-bit pair sums without VNNI (s8s8 ARM dot-product kernels do not care);
 * - the k lowest-SQNR layers kept in float (the trainer's diagnostics rank them).
 */
export function candidatePlan(profile: DeviceProfile, v: TuningCreate['variants']): CandidatePlan[] {
  const r = profile.recipe;
  const out: CandidatePlan[] = [{ key: r.id, recipe: r, configured: true, why: "the profile's configured recipe" }];
  if (v.weightGranularity) {
    const pc = r.weights.granularity === 'per-channel';
    out.push({ key: `${r.id}-${pc ? 'pt' : 'pc'}`, recipe: { ...r, id: `${r.id}-${pc ? 'pt' : 'pc'}`, weights: { ...r.weights, granularity: pc ? 'per-tensor' : 'per-channel' } }, configured: false, why: `weights ${pc ? 'per-tensor' : 'per-channel'}` });
  }
  if (v.reduceRange && r.activations.dtype === 'uint8') {
    const id = `${r.id}-${r.reduceRange ? 'full' : 'rr'}`;
    out.push({ key: id, recipe: { ...r, id, reduceRange: !r.reduceRange }, configured: false, why: r.reduceRange ? 'full 8-bit weights (no reduce_range)' : '7-bit weights (reduce_range)' });
  }
  if (v.floatLayers > 0) {
    const id = `${r.id}-f${v.floatLayers}`;
    out.push({ key: id, recipe: { ...r, id, keepFloatLayers: v.floatLayers }, configured: false, why: `the ${v.floatLayers} most sensitive layers kept in float` });
  }
  if (v.fp32) out.push({ key: 'fp32', recipe: null, configured: false, why: 'the fp32 student (fallback)' });
  return out;
}
