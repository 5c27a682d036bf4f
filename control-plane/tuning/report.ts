import type { TuningReportRow, TuningView } from '../../shared/tuning.ts';

/** The per-profile candidate table of a tuning, one row per candidate (the report's JSON rows and CSV). Pure. */
export function tuningReportRows(v: TuningView): TuningReportRow[] {
  const order = { chosen: 0, pareto: 1, dominated: 2, discarded: 3, 'not-measured': 4 } as const;
  return [...v.candidates]
    .sort((a, b) => a.profileId.localeCompare(b.profileId) || (a.status ? order[a.status] : 9) - (b.status ? order[b.status] : 9) || a.key.localeCompare(b.key))
    .map((c) => ({
      profileId: c.profileId,
      candidate: c.key,
      modelId: c.modelId,
      version: c.version,
      kind: c.kind,
      status: c.status ?? 'open',
      pytorchAccuracy: c.pytorchAccuracy,
      runtimeAccuracy: c.runtimeAccuracy,
      deviceWorstAccuracy: c.aggregate?.worstAccuracy ?? null,
      medianP50Ms: c.aggregate?.medianP50 ?? null,
      medianP90Ms: c.aggregate?.medianP90 ?? null,
      peakRssBytes: c.aggregate?.peakRssBytes ?? null,
      integerKernelShare: c.aggregate?.integerKernelShare ?? null,
      devices: [...c.measurements.map((m) => `${m.deviceId}:p50=${m.p50.toFixed(4)}ms acc=${m.accuracy ?? 'n/a'}`), ...c.failures.map((f) => `${f.deviceId}:failed`), ...c.missing.map((f) => `${f.deviceId}:missing`)].join(' '),
      reasons: c.reasons.join('; '),
    }));
}
