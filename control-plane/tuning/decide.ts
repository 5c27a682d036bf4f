import type { CandidateAggregate, CandidateStatus, DeviceMeasurement, TuningConstraints, TuningObjective } from '../../shared/tuning.ts';

/**
 * The tuning decision as plain functions over measured numbers: aggregate each candidate over its
 * canaries, discard what breaks a constraint on any device, build the measured Pareto front
 * (median p50 down, worst-device accuracy up) and pick by the objective. No I/O, no clock.
 */

export type CandidateInput = {
  key: string;
  kind: 'int8' | 'fp32';
  /** The recipe the profile is configured with (the fallback when nothing is measured). */
  configured?: boolean;
  measurements: DeviceMeasurement[];
  failures: { deviceId: string; reason: string }[];
  missing: { deviceId: string; reason: string }[];
  /** PyTorch accuracy on the eval set (reference for an fp32 student no device measured). */
  centralAccuracy: number | null;
};

export type CandidateVerdict = { aggregate: CandidateAggregate | null; status: CandidateStatus; reasons: string[] };

export type Decision = {
  measured: boolean;
  chosen: string | null;
  front: string[];
  reason: string;
  verdicts: Record<string, CandidateVerdict>;
  missing: string[];
};

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median p50/p90 over canaries, the worst device's accuracy, the highest peak RSS, the median integer-kernel share. */
export function aggregate(ms: readonly DeviceMeasurement[]): CandidateAggregate | null {
  if (ms.length === 0) return null;
  const accs = ms.map((m) => m.accuracy).filter((a): a is number => a !== null);
  const shares = ms.map((m) => m.integerKernelShare).filter((a): a is number => a !== null);
  return {
    devices: ms.length,
    medianP50: median(ms.map((m) => m.p50)),
    medianP90: median(ms.map((m) => m.p90)),
    worstAccuracy: accs.length ? Math.min(...accs) : null,
    peakRssBytes: Math.max(...ms.map((m) => m.peakRssBytes)),
    integerKernelShare: shares.length ? median(shares) : null,
  };
}

export type Point = { key: string; latency: number; accuracy: number | null };

const acc = (p: { accuracy: number | null }): number => p.accuracy ?? -Infinity;

/** True when `a` is at least as fast and as accurate as `b`, and strictly better in one. */
export function dominates(a: Point, b: Point): boolean {
  return a.latency <= b.latency && acc(a) >= acc(b) && (a.latency < b.latency || acc(a) > acc(b));
}

/** The non-dominated points, fastest first. */
export function paretoFront(points: readonly Point[]): string[] {
  return points
    .filter((p) => !points.some((q) => q.key !== p.key && dominates(q, p)))
    .sort((a, b) => a.latency - b.latency || acc(b) - acc(a) || a.key.localeCompare(b.key))
    .map((p) => p.key);
}

const ms = (x: number): string => `${x < 1 ? x.toFixed(4) : x.toFixed(2)} ms`;
const pct = (x: number | null): string => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const mib = (x: number): string => `${(x / 2 ** 20).toFixed(1)} MiB`;

/** Each device's reference accuracy, or why there is none. */
function referenceAccuracy(c: CandidateInput[], constraints: TuningConstraints, teacherAccuracy: number | null): (deviceId: string) => { value: number; what: string } | null {
  if (constraints.against === 'teacher') return () => (teacherAccuracy === null ? null : { value: teacherAccuracy, what: 'teacher (PyTorch)' });
  const fp32 = c.find((x) => x.kind === 'fp32');
  return (deviceId) => {
    const m = fp32?.measurements.find((x) => x.deviceId === deviceId);
    if (m && m.accuracy !== null) return { value: m.accuracy, what: `fp32 student on ${deviceId}` };
    return fp32?.centralAccuracy != null ? { value: fp32.centralAccuracy, what: 'fp32 student (PyTorch)' } : null;
  };
}

/** Why a measured candidate breaks the constraints on some device; empty when it holds on all. */
export function constraintBreaks(cand: CandidateInput, constraints: TuningConstraints, ref: (deviceId: string) => { value: number; what: string } | null): string[] {
  const out: string[] = [];
  for (const f of cand.failures) out.push(`failed on ${f.deviceId}: ${f.reason}`);
  for (const m of cand.measurements) {
    const r = ref(m.deviceId);
    if (m.accuracy !== null && r !== null && r.value - m.accuracy > constraints.maxAccuracyDrop + 1e-9) {
      out.push(`accuracy drop ${pct(r.value - m.accuracy)} on ${m.deviceId} (${pct(m.accuracy)} vs ${r.what} ${pct(r.value)}) exceeds ${pct(constraints.maxAccuracyDrop)}`);
    }
    if (constraints.maxP50Ms !== undefined && m.p50 > constraints.maxP50Ms) out.push(`p50 ${ms(m.p50)} on ${m.deviceId} exceeds the ${ms(constraints.maxP50Ms)} budget`);
    if (constraints.maxPeakRssBytes !== undefined && m.peakRssBytes > constraints.maxPeakRssBytes) {
      out.push(`peak memory ${mib(m.peakRssBytes)} on ${m.deviceId} exceeds the ${mib(constraints.maxPeakRssBytes)} budget`);
    }
  }
  return out;
}

type Scored = { key: string; a: CandidateAggregate };

/** Orders feasible candidates by the objective, best first; ties go to the more accurate, then the faster, then the key. */
export function rankByObjective(xs: readonly Scored[], objective: TuningObjective): Scored[] {
  const primary = (s: Scored): number => {
    switch (objective) {
      case 'lowest-p50':
        return s.a.medianP50;
      case 'lowest-p90':
        return s.a.medianP90;
      case 'highest-accuracy':
        return -(s.a.worstAccuracy ?? -Infinity);
      case 'lowest-memory':
        return s.a.peakRssBytes;
    }
  };
  return [...xs].sort((x, y) => primary(x) - primary(y) || acc({ accuracy: y.a.worstAccuracy }) - acc({ accuracy: x.a.worstAccuracy }) || x.a.medianP50 - y.a.medianP50 || x.key.localeCompare(y.key));
}

const OBJECTIVE_TEXT: Record<TuningObjective, (a: CandidateAggregate) => string> = {
  'lowest-p50': (a) => `median p50 ${ms(a.medianP50)}`,
  'lowest-p90': (a) => `median p90 ${ms(a.medianP90)}`,
  'highest-accuracy': (a) => `worst-device accuracy ${pct(a.worstAccuracy)}`,
  'lowest-memory': (a) => `peak memory ${mib(a.peakRssBytes)}`,
};

/** The decision for one profile from its candidates' measurements. */
export function decideProfile(input: { candidates: CandidateInput[]; constraints: TuningConstraints; objective: TuningObjective; teacherAccuracy: number | null }): Decision {
  const { candidates, constraints, objective } = input;
  const ref = referenceAccuracy(candidates, constraints, input.teacherAccuracy);
  const verdicts: Record<string, CandidateVerdict> = {};
  const feasible: Scored[] = [];
  const missing: string[] = [];
  for (const c of candidates) {
    for (const m of c.missing) missing.push(`${c.key} on ${m.deviceId}: ${m.reason}`);
    const a = aggregate(c.measurements);
    const breaks = constraintBreaks(c, constraints, ref);
    if (breaks.length) verdicts[c.key] = { aggregate: a, status: 'discarded', reasons: breaks };
    else if (!a) verdicts[c.key] = { aggregate: null, status: 'not-measured', reasons: ['no canary measured it'] };
    else {
      verdicts[c.key] = { aggregate: a, status: 'pareto', reasons: [] };
      feasible.push({ key: c.key, a });
    }
  }
  const measured = candidates.some((c) => c.measurements.length > 0);
  if (!measured) return { ...fallbackDecision(candidates, 'no canary measured any candidate'), verdicts: Object.fromEntries(candidates.map((c) => [c.key, verdicts[c.key]!])), missing };

  const points: Point[] = feasible.map((f) => ({ key: f.key, latency: f.a.medianP50, accuracy: f.a.worstAccuracy }));
  const front = paretoFront(points);
  if (feasible.length === 0) return { measured: true, chosen: null, front, reason: 'no candidate met the constraints on every canary; nothing is rolled out', verdicts, missing };

  const ranked = rankByObjective(feasible, objective);
  const best = ranked[0]!;
  const say = OBJECTIVE_TEXT[objective];
  verdicts[best.key] = { aggregate: best.a, status: 'chosen', reasons: [] };
  const bestPoint = points.find((p) => p.key === best.key)!;
  for (const f of ranked.slice(1)) {
    const p = points.find((x) => x.key === f.key)!;
    const dom = points.find((q) => q.key !== p.key && dominates(q, p));
    if (dom) {
      const d = feasible.find((x) => x.key === dom.key)!.a;
      verdicts[f.key] = { aggregate: f.a, status: 'dominated', reasons: [`dominated by ${dom.key}: p50 ${ms(d.medianP50)} vs ${ms(f.a.medianP50)}, worst accuracy ${pct(d.worstAccuracy)} vs ${pct(f.a.worstAccuracy)}`] };
    } else {
      verdicts[f.key] = { aggregate: f.a, status: 'pareto', reasons: [`on the Pareto front, but ${objective} picks ${best.key}: ${say(best.a)} vs ${say(f.a)}`] };
    }
  }
  const onFront = front.includes(bestPoint.key) ? 'on the Pareto front' : 'off the latency/accuracy front';
  const discarded = candidates.filter((c) => verdicts[c.key]!.status === 'discarded').length;
  const reason = `${best.key}: best ${say(best.a)} of ${feasible.length} feasible candidate(s) (${onFront}; worst-device accuracy ${pct(best.a.worstAccuracy)}, ${best.a.devices} canary(ies))${discarded ? `; ${discarded} discarded by the constraints` : ''}`;
  return { measured: true, chosen: best.key, front, reason, verdicts, missing };
}

/** No measurement: the profile keeps its configured recipe, marked not measured. */
export function fallbackDecision(candidates: CandidateInput[], why: string): Omit<Decision, 'verdicts' | 'missing'> {
  const configured = candidates.find((c) => c.configured);
  return {
    measured: false,
    chosen: configured?.key ?? null,
    front: [],
    reason: configured ? `not measured (${why}): falls back to the configured recipe ${configured.key}` : `not measured (${why}) and no candidate of the configured recipe`,
  };
}
