// Turns a model report (GET /reports/models/:id: {modelId, version, profiles, devices}) into the charts' data. Each
// device row carries the model's p50/p90/p99 and accuracy and the fp32 baseline the device measured beside it
// (fp32P50Ms, fp32Accuracy, speedupVsFp32). Pure functions, so a test can feed them rows.

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * One row per measurement: the model itself (variant = its kind, 'int8' or 'fp32') and, where the device measured
 * one, its fp32 baseline (variant 'fp32 baseline').
 */
export function reportRows(report, kind = 'int8') {
  return report.devices.flatMap((d) => {
    const own = { deviceId: d.deviceId, profileId: d.profileId ?? 'unknown', variant: kind, baseline: false, min: d.p50Ms, p50: d.p50Ms, p90: d.p90Ms, p99: d.p99Ms, max: d.p99Ms, accuracy: d.accuracy, speedup: d.speedupVsFp32, version: d.version };
    if (d.fp32P50Ms === null) return [own];
    return [own, { deviceId: d.deviceId, profileId: d.profileId ?? 'unknown', variant: 'fp32 baseline', baseline: true, min: d.fp32P50Ms, p50: d.fp32P50Ms, p90: null, p99: null, max: null, accuracy: d.fp32Accuracy, speedup: null, version: d.version }];
  });
}

/** One point per device report of the model itself: its p50 against its on-device accuracy. */
export function devicePoints(rows) {
  return rows.filter((r) => !r.baseline && Number.isFinite(r.accuracy)).map((r) => ({ deviceId: r.deviceId, profileId: r.profileId, label: r.deviceId, x: r.p50, y: r.accuracy }));
}

/** Latency distribution per profile, the model's own rows: pooled percentiles plus each device's p50 as a point. */
export function latencyByProfile(rows) {
  const by = new Map();
  for (const r of rows.filter((x) => !x.baseline)) (by.get(r.profileId) ?? by.set(r.profileId, []).get(r.profileId)).push(r);
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

/** Per profile: one point per variant (the model and its fp32 baseline), median p50 across devices vs mean accuracy. */
export function accuracyVsLatency(rows) {
  const out = new Map();
  for (const r of rows) {
    if (!Number.isFinite(r.accuracy)) continue;
    const byVariant = out.get(r.profileId) ?? out.set(r.profileId, new Map()).get(r.profileId);
    (byVariant.get(r.variant) ?? byVariant.set(r.variant, []).get(r.variant)).push(r);
  }
  return [...out].map(([profileId, byVariant]) => ({
    profileId,
    points: [...byVariant].map(([variant, rs]) => ({ label: variant, x: median(rs.map((r) => r.p50)), y: rs.reduce((s, r) => s + r.accuracy, 0) / rs.length, baseline: rs[0].baseline })),
  }));
}

/** Per device: the speed-up over its fp32 baseline the device measured (above 1: the model is faster). */
export function speedups(report) {
  return report.devices
    .filter((d) => d.speedupVsFp32 !== null)
    .map((d) => ({ deviceId: d.deviceId, profileId: d.profileId ?? 'unknown', speedup: d.speedupVsFp32 }))
    .sort((a, b) => a.profileId.localeCompare(b.profileId) || a.deviceId.localeCompare(b.deviceId));
}
