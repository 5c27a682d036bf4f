import type { Db } from '../store/db.ts';
import type { RolloutDeviceRow, RolloutRow, WaveStateCount } from './rollout-store.ts';
import { IN_FLIGHT } from './state-machine.ts';
import { groupBy } from '../../shared/group.ts';

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** RFC 4180 CSV: quotes where needed, header from the first row's keys. */
export function toCsv(rows: readonly Record<string, unknown>[]): string {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]!);
  const cell = (v: unknown): string => {
    const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

/** A rollout's line in the list: its device count is all it needs of its devices (the list does not read them). */
export function rolloutSummary(r: RolloutRow, deviceCount: number): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    state: r.state,
    currentWave: r.currentWave,
    abortReason: r.abortReason,
    devices: deviceCount,
    createdAt: r.createdAt,
    finishedAt: r.finishedAt,
    models: r.spec.models,
    gates: r.gates,
  };
}

/**
 * A rollout's waves from its devices counted per wave and state (`RolloutStore.waveCounts`, or `countWaves` over rows
 * in memory) and each wave's median p50 (`median(wave, measured)`): the same table for the paged view and the report.
 */
export function rolloutWaves(r: RolloutRow, counts: readonly WaveStateCount[], medianP50: (wave: number, measured: number) => number | null): Record<string, unknown>[] {
  return r.waveSizes.map((size, wave) => {
    const cs = counts.filter((c) => c.wave === wave);
    const count = (...states: string[]) => cs.reduce((n, c) => n + (states.includes(c.state) ? c.n : 0), 0);
    const measured = cs.reduce((n, c) => n + c.measured, 0);
    return {
      wave,
      planned: size,
      devices: cs.reduce((n, c) => n + c.n, 0),
      state: wave < r.currentWave ? 'done' : wave === r.currentWave ? (r.state === 'running' ? 'active' : r.state) : 'pending',
      active: count('active'),
      failed: count('failed', 'timed-out'),
      inFlight: count(...IN_FLIGHT),
      pending: count('pending'),
      rolledBack: count('rolled-back'),
      medianP50Ms: medianP50(wave, measured),
    };
  });
}

/** `RolloutStore.waveCounts` over device rows already in memory. */
export function countWaves(devices: readonly RolloutDeviceRow[]): WaveStateCount[] {
  const by = new Map<string, WaveStateCount>();
  for (const d of devices) {
    const k = `${d.wave}\0${d.state}`;
    const c = by.get(k) ?? { wave: d.wave, state: d.state, n: 0, measured: 0 };
    c.n++;
    if (d.p50Ms !== null) c.measured++;
    by.set(k, c);
  }
  return [...by.values()];
}

/** One device of a rollout as the API shows it. */
export function rolloutDeviceView(d: RolloutDeviceRow): Record<string, unknown> {
  return {
    deviceId: d.deviceId,
    profileId: d.profileId,
    wave: d.wave,
    state: d.state,
    model: `${d.modelId}@${d.modelVersion}`,
    previousModel: d.previousModel ? `${d.previousModel.modelId}@${d.previousModel.version}` : null,
    p50Ms: d.p50Ms,
    accuracy: d.accuracy,
    speedupVsFp32: d.speedup,
    reason: d.reason,
  };
}

/** The whole rollout (GET /reports/rollouts/:id): every device, the waves computed from them. */
export function rolloutReport(r: RolloutRow, devices: readonly RolloutDeviceRow[]): { summary: Record<string, unknown>; waves: Record<string, unknown>[]; devices: Record<string, unknown>[] } {
  const waves = rolloutWaves(r, countWaves(devices), (wave) => median(devices.flatMap((d) => (d.wave === wave && d.p50Ms !== null ? [d.p50Ms] : []))));
  return { summary: rolloutSummary(r, devices.length), waves, devices: devices.map(rolloutDeviceView) };
}

type BenchRow = {
  device_id: string;
  version: number;
  profile_id: string | null;
  runtime: string;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  throughput: number;
  peak_rss_bytes: number;
  accuracy: number | null;
  agreement: number | null;
  integer_kernel_share: number | null;
  baseline_p50_ms: number | null;
  baseline_accuracy: number | null;
  speedup: number | null;
  at: number;
};

/**
 * Per profile, what the devices measured for a model: medians of the devices' own p50/p90, peak
 * memory, on-device accuracy next to the central int8 accuracy, and the int8-vs-fp32 speed-up each
 * device measured itself. The newest report per device and version counts. The numbers are columns of
 * delivery_benchmarks (delivery migration 4): no report JSON is read.
 */
export function modelReport(db: Db, modelId: string, version: number | null, centralAccuracy: (version: number) => number | null): { profiles: Record<string, unknown>[]; devices: Record<string, unknown>[] } {
  const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'delivery_benchmarks'").get();
  if (!hasTable) return { profiles: [], devices: [] };
  const rows = db
    .prepare(
      `SELECT b.device_id, b.version, d.profile_id, b.runtime, b.p50_ms, b.p90_ms, b.p99_ms, b.throughput, b.peak_rss_bytes, b.accuracy, b.agreement,
         b.integer_kernel_share, b.baseline_p50_ms, b.baseline_accuracy, b.speedup, b.at FROM delivery_benchmarks b
       LEFT JOIN devices d ON d.id = b.device_id
       WHERE b.model_id = ? AND (? IS NULL OR b.version = ?) AND b.id IN (SELECT MAX(id) FROM delivery_benchmarks WHERE model_id = ? GROUP BY device_id, version)
       ORDER BY b.device_id`,
    )
    .all(modelId, version, version, modelId) as BenchRow[];
  const devices = rows.map((r) => ({
    deviceId: r.device_id,
    profileId: r.profile_id,
    version: r.version,
    runtime: r.runtime,
    p50Ms: r.p50_ms,
    p90Ms: r.p90_ms,
    p99Ms: r.p99_ms,
    throughputPerSecond: r.throughput,
    peakRssBytes: r.peak_rss_bytes,
    accuracy: r.accuracy,
    agreement: r.agreement,
    fp32P50Ms: r.baseline_p50_ms,
    fp32Accuracy: r.baseline_accuracy,
    speedupVsFp32: r.speedup ?? (r.baseline_p50_ms !== null && r.p50_ms > 0 ? r.baseline_p50_ms / r.p50_ms : null),
    integerKernelShare: r.integer_kernel_share,
    reportedAt: r.at,
  }));
  // one device, one vote (issue 8 item 7): across versions only a device's newest measurement enters the medians
  const newest = new Map<string, (typeof devices)[number]>();
  for (const d of devices) {
    const o = newest.get(d.deviceId);
    if (!o || d.reportedAt >= o.reportedAt) newest.set(d.deviceId, d);
  }
  const byProfile = groupBy(newest.values(), (d) => d.profileId ?? 'unknown');
  const nums = (xs: (number | null)[]): number[] => xs.filter((x): x is number => x !== null);
  const profiles = [...byProfile].map(([profileId, ds]) => {
    const versions = [...new Set(ds.map((d) => d.version))];
    const central = versions.length === 1 ? centralAccuracy(versions[0]!) : null;
    const acc = median(nums(ds.map((d) => d.accuracy)));
    return {
      profileId,
      devices: ds.length,
      versions,
      medianP50Ms: median(ds.map((d) => d.p50Ms)),
      medianP90Ms: median(ds.map((d) => d.p90Ms)),
      medianPeakRssBytes: median(ds.map((d) => d.peakRssBytes)),
      medianAccuracy: acc,
      centralAccuracy: central,
      accuracyDeltaVsCentral: acc !== null && central !== null ? acc - central : null,
      medianSpeedupVsFp32: median(nums(ds.map((d) => d.speedupVsFp32))),
      medianFp32P50Ms: median(nums(ds.map((d) => d.fp32P50Ms))),
    };
  });
  return { profiles, devices };
}
