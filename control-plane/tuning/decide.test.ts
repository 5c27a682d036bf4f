import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DeviceMeasurement, TuningConstraints } from '../../shared/tuning.ts';
import { aggregate, decideProfile, median, paretoFront, rankByObjective, type CandidateInput } from './decide.ts';

const m = (deviceId: string, p50: number, accuracy: number | null, extra: Partial<DeviceMeasurement> = {}): DeviceMeasurement => ({
  deviceId,
  p50,
  p90: p50 * 1.2,
  accuracy,
  agreement: null,
  peakRssBytes: 100 * 2 ** 20,
  integerKernelShare: null,
  sessionCreateMs: 5,
  at: 0,
  ...extra,
});
const cand = (key: string, measurements: DeviceMeasurement[], extra: Partial<CandidateInput> = {}): CandidateInput => ({
  key,
  kind: key === 'fp32' ? 'fp32' : 'int8',
  measurements,
  failures: [],
  missing: [],
  centralAccuracy: null,
  ...extra,
});
const C: TuningConstraints = { maxAccuracyDrop: 0.01, against: 'fp32-student' };

test('median and aggregate: median p50/p90 over canaries, worst-device accuracy, highest peak memory', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  const a = aggregate([m('a', 1, 0.9, { peakRssBytes: 10, integerKernelShare: 0.8 }), m('b', 3, 0.8, { peakRssBytes: 30, integerKernelShare: 0.6 }), m('c', 2, 0.95, { peakRssBytes: 20, integerKernelShare: null })]);
  assert.deepEqual(a, { devices: 3, medianP50: 2, medianP90: 2.4, worstAccuracy: 0.8, peakRssBytes: 30, integerKernelShare: 0.7 });
  assert.equal(aggregate([]), null);
  assert.equal(aggregate([m('a', 1, null)])!.worstAccuracy, null);
});

test('Pareto front: non-dominated points, fastest first (table)', () => {
  const rows: { name: string; points: { key: string; latency: number; accuracy: number | null }[]; front: string[] }[] = [
    { name: 'one point', points: [{ key: 'a', latency: 1, accuracy: 0.9 }], front: ['a'] },
    { name: 'faster and as accurate dominates', points: [{ key: 'a', latency: 1, accuracy: 0.9 }, { key: 'b', latency: 2, accuracy: 0.9 }], front: ['a'] },
    { name: 'trade-off keeps both', points: [{ key: 'a', latency: 1, accuracy: 0.8 }, { key: 'b', latency: 2, accuracy: 0.9 }], front: ['a', 'b'] },
    {
      name: 'three with one dominated',
      points: [{ key: 'fast', latency: 1, accuracy: 0.8 }, { key: 'mid', latency: 2, accuracy: 0.79 }, { key: 'exact', latency: 3, accuracy: 0.9 }],
      front: ['fast', 'exact'],
    },
    { name: 'identical points are both on it', points: [{ key: 'a', latency: 1, accuracy: 0.9 }, { key: 'b', latency: 1, accuracy: 0.9 }], front: ['a', 'b'] },
    { name: 'unknown accuracy loses to a known one at equal latency', points: [{ key: 'a', latency: 1, accuracy: null }, { key: 'b', latency: 1, accuracy: 0.5 }], front: ['b'] },
  ];
  for (const r of rows) assert.deepEqual(paretoFront(r.points), r.front, r.name);
});

test('objective ranking (table)', () => {
  const xs = [
    { key: 'fast', a: aggregate([m('d', 1, 0.8, { peakRssBytes: 300 })])! },
    { key: 'accurate', a: aggregate([m('d', 3, 0.9, { peakRssBytes: 200 })])! },
    { key: 'small', a: aggregate([m('d', 2, 0.85, { peakRssBytes: 100 })])! },
  ];
  const first = (o: Parameters<typeof rankByObjective>[1]): string => rankByObjective(xs, o)[0]!.key;
  assert.equal(first('lowest-p50'), 'fast');
  assert.equal(first('lowest-p90'), 'fast');
  assert.equal(first('highest-accuracy'), 'accurate');
  assert.equal(first('lowest-memory'), 'small');
});

test('decisions with evidence (table)', () => {
  const rows: { name: string; candidates: CandidateInput[]; constraints?: TuningConstraints; teacher?: number; chosen: string | null; status: Record<string, string>; reason?: RegExp; measured?: boolean }[] = [
    {
      name: 'int8 slower than fp32 on the device: the fp32 fallback wins',
      candidates: [cand('fp32', [m('a', 0.02, 1), m('b', 0.021, 1), m('c', 0.03, 1)]), cand('r', [m('a', 0.03, 1), m('b', 0.031, 1), m('c', 0.04, 1)])],
      chosen: 'fp32',
      status: { fp32: 'chosen', r: 'dominated' },
    },
    {
      name: 'int8 faster within the accuracy budget wins',
      candidates: [cand('fp32', [m('a', 1.7, 0.9), m('b', 1.6, 0.91)]), cand('r', [m('a', 0.5, 0.895), m('b', 0.55, 0.905)])],
      chosen: 'r',
      status: { fp32: 'pareto', r: 'chosen' },
    },
    {
      name: 'the fastest breaks the accuracy drop on one device: never chosen',
      candidates: [
        cand('fp32', [m('a', 1.7, 0.9), m('b', 1.6, 0.9)]),
        cand('broken', [m('a', 0.4, 0.9), m('b', 0.4, 0.7)]),
        cand('r', [m('a', 0.5, 0.9), m('b', 0.5, 0.895)]),
      ],
      chosen: 'r',
      status: { broken: 'discarded', r: 'chosen', fp32: 'pareto' },
      reason: /^r: best median p50/,
    },
    {
      name: 'latency budget discards the slow ones; memory budget the big ones',
      candidates: [cand('fp32', [m('a', 5, 0.9)]), cand('r', [m('a', 1, 0.9, { peakRssBytes: 500 })]), cand('s', [m('a', 2, 0.9, { peakRssBytes: 100 })])],
      constraints: { ...C, maxP50Ms: 3, maxPeakRssBytes: 200 },
      chosen: 's',
      status: { fp32: 'discarded', r: 'discarded', s: 'chosen' },
    },
    {
      name: 'against the teacher',
      candidates: [cand('fp32', [m('a', 2, 0.95)]), cand('r', [m('a', 1, 0.9)])],
      constraints: { ...C, against: 'teacher', maxAccuracyDrop: 0.02 },
      teacher: 0.93,
      chosen: 'fp32',
      status: { r: 'discarded', fp32: 'chosen' },
    },
    {
      name: 'a candidate that failed to load on one canary is discarded, the others decide',
      candidates: [cand('fp32', [m('a', 2, 0.9), m('b', 2, 0.9)]), cand('r', [m('a', 1, 0.9)], { failures: [{ deviceId: 'b', reason: 'cannot load' }] })],
      chosen: 'fp32',
      status: { r: 'discarded', fp32: 'chosen' },
    },
    {
      name: 'offline canary: decided on what was measured, what is missing is said',
      candidates: [cand('fp32', [m('a', 2, 0.9)], { missing: [{ deviceId: 'b', reason: 'went offline' }] }), cand('r', [m('a', 1, 0.9)])],
      chosen: 'r',
      status: { r: 'chosen', fp32: 'dominated' },
    },
    {
      name: 'nothing feasible: nothing chosen',
      candidates: [cand('fp32', [m('a', 5, 0.9)]), cand('r', [m('a', 4, 0.9)])],
      constraints: { ...C, maxP50Ms: 1 },
      chosen: null,
      status: { fp32: 'discarded', r: 'discarded' },
      reason: /no candidate met/,
    },
    {
      name: 'nothing measured: the configured recipe, marked not measured',
      candidates: [cand('fp32', []), cand('generic-cpu', [], { configured: true })],
      chosen: 'generic-cpu',
      status: { fp32: 'not-measured', 'generic-cpu': 'not-measured' },
      reason: /^not measured/,
      measured: false,
    },
  ];
  for (const r of rows) {
    const d = decideProfile({ candidates: r.candidates, constraints: r.constraints ?? C, objective: 'lowest-p50', teacherAccuracy: r.teacher ?? null });
    assert.equal(d.chosen, r.chosen, `${r.name}: ${d.reason}`);
    for (const [k, s] of Object.entries(r.status)) assert.equal(d.verdicts[k]!.status, s, `${r.name}: ${k}: ${d.verdicts[k]!.reasons.join('; ')}`);
    for (const [k, v] of Object.entries(d.verdicts)) if (v.status !== 'chosen' && d.measured) assert.ok(v.reasons.length > 0, `${r.name}: ${k} lost without a reason`);
    if (r.reason) assert.match(d.reason, r.reason, r.name);
    assert.equal(d.measured, r.measured ?? true, r.name);
  }
  const off = decideProfile({ candidates: [cand('fp32', [m('a', 2, 0.9)], { missing: [{ deviceId: 'b', reason: 'went offline' }] })], constraints: C, objective: 'lowest-p50', teacherAccuracy: null });
  assert.deepEqual(off.missing, ['fp32 on b: went offline']);
  const broken = decideProfile({ candidates: [cand('fp32', [m('a', 1, 0.9)]), cand('b', [m('a', 0.5, 0.5)])], constraints: C, objective: 'lowest-p50', teacherAccuracy: null });
  assert.match(broken.verdicts['b']!.reasons[0]!, /accuracy drop 40\.0% on a \(50\.0% vs fp32 student on a 90\.0%\) exceeds 1\.0%/);
});
