// Turns a model report into the charts' data. GET /reports/models/:id answers {modelId, version, profiles, devices}:
// one device row per device and version, its int8 p50Ms/p90Ms/p99Ms and accuracy, and the fp32 baseline the device
// measured itself (fp32P50Ms, fp32Accuracy, speedupVsFp32). Rows in the older {results: [{variant, latencyMs}]}
// shape (one row per variant) still work. Pure functions, so a test can feed them synthetic rows.
import { pick } from './api.js';

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const FP32 = /fp32|float|baseline|teacher/i;

/** One benchmark row: device, profile, variant (recipe id or fp32 baseline), latency percentiles (ms), accuracy. */
export function normalizeRow(r) {
  const lat = (k) => pick(r, `latencyMs.${k}`, `latency.${k}Ms`, `latency.${k}`, `benchmark.latencyMs.${k}`, `${k}Ms`, k);
  return {
    deviceId: pick(r, 'deviceId', 'device'),
    profileId: pick(r, 'profileId', 'profile') ?? 'unknown',
    variant: String(pick(r, 'variant', 'recipeId', 'artifactKind', 'kind', 'artifact') ?? 'int8'),
    min: lat('min'), p50: lat('p50'), p90: lat('p90'), p99: lat('p99'), max: lat('max'), mean: lat('mean'),
    accuracy: pick(r, 'accuracy', 'benchmark.accuracy', 'metrics.accuracy'),
    speedup: pick(r, 'speedupVsFp32', 'speedup'),
    version: pick(r, 'version'),
  };
}

/** A device row of the real report also carries its fp32 baseline: that becomes an 'fp32' row of its own. */
function expandRow(r) {
  const row = normalizeRow(r);
  const out = [row];
  const fp32P50 = pick(r, 'fp32P50Ms');
  if (Number.isFinite(fp32P50)) out.push({ deviceId: row.deviceId, profileId: row.profileId, variant: 'fp32', min: fp32P50, p50: fp32P50, p90: undefined, p99: undefined, max: undefined, mean: undefined, accuracy: pick(r, 'fp32Accuracy'), speedup: undefined, version: row.version });
  return out;
}

export function reportRows(report) {
  const rows = pick(report, 'results', 'benchmarks', 'rows', 'devices', 'items') ?? [];
  return (Array.isArray(rows) ? rows : []).flatMap(expandRow).filter((r) => Number.isFinite(r.p50));
}

/** One point per device report (int8 rows): its p50 against its on-device accuracy. */
export function devicePoints(rows) {
  return rows.filter((r) => !isBaseline(r.variant) && Number.isFinite(r.accuracy)).map((r) => ({ deviceId: r.deviceId, profileId: r.profileId, label: r.deviceId, x: r.p50, y: r.accuracy }));
}

export const isBaseline = (variant) => FP32.test(variant);

/** Latency distribution per profile, int8 rows only: pooled percentiles plus each device's p50 as a point. */
export function latencyByProfile(rows) {
  const by = new Map();
  for (const r of rows.filter((x) => !isBaseline(x.variant))) (by.get(r.profileId) ?? by.set(r.profileId, []).get(r.profileId)).push(r);
  return [...by].map(([label, rs]) => ({
    label,
    min: Math.min(...rs.map((r) => r.min ?? r.p50)),
    p50: median(rs.map((r) => r.p50)),
    p90: median(rs.map((r) => r.p90 ?? r.p50)),
    p99: Math.max(...rs.map((r) => r.p99 ?? r.p50)),
    max: Math.max(...rs.map((r) => r.max ?? r.p99 ?? r.p50)),
    points: rs.map((r) => r.p50),
  }));
}

/** Per profile: one point per variant (all recipes and baselines), median p50 across devices vs mean accuracy. */
export function accuracyVsLatency(rows) {
  const out = new Map();
  for (const r of rows) {
    if (!Number.isFinite(r.accuracy)) continue;
    const byVariant = out.get(r.profileId) ?? out.set(r.profileId, new Map()).get(r.profileId);
    (byVariant.get(r.variant) ?? byVariant.set(r.variant, []).get(r.variant)).push(r);
  }
  return [...out].map(([profileId, byVariant]) => ({
    profileId,
    points: [...byVariant].map(([variant, rs]) => ({ label: variant, x: median(rs.map((r) => r.p50)), y: rs.reduce((s, r) => s + r.accuracy, 0) / rs.length, baseline: isBaseline(variant) })),
  }));
}

/** Per device: fp32 p50 / int8 p50 (above 1 means int8 is faster). */
export function speedups(rows) {
  const by = new Map();
  for (const r of rows) (by.get(r.deviceId) ?? by.set(r.deviceId, []).get(r.deviceId)).push(r);
  const out = [];
  for (const [deviceId, rs] of by) {
    const fp32 = rs.find((r) => /fp32|float/i.test(r.variant) && !/teacher/i.test(r.variant));
    const int8 = rs.find((r) => !isBaseline(r.variant));
    // the device's own measurement when the report has it; else fp32 p50 / int8 p50
    if (int8 && Number.isFinite(int8.speedup)) out.push({ deviceId, profileId: int8.profileId, speedup: int8.speedup });
    else if (fp32 && int8) out.push({ deviceId, profileId: int8.profileId, speedup: fp32.p50 / int8.p50 });
  }
  return out.sort((a, b) => a.profileId.localeCompare(b.profileId) || a.deviceId.localeCompare(b.deviceId));
}
