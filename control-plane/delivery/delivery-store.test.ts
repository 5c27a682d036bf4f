import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BenchmarkResult } from '../../shared/messages.ts';
import { migrateRoom, openDatabase } from '../store/db.ts';
import { DELIVERY_MIGRATIONS } from './migrations.ts';
import { DeliveryStore } from './delivery-store.ts';

// A transfer ends (its shared topic revoked) when the last device offered it is done. The check runs at every
// device's install report, so it must not read the wave: it asks whether one open offer is left.

test('hasOpenOffer: true while any offer of the transfer is open, false once the last is closed or expired', () => {
  const db = openDatabase(':memory:');
  migrateRoom(db, 'delivery', DELIVERY_MIGRATIONS);
  db.pragma('foreign_keys = OFF');
  const s = new DeliveryStore(db);
  assert.equal(s.hasOpenOffer('t1'), false, 'never offered');
  for (const d of ['a', 'b', 'c']) s.offer(d, 't1', `dl-${d}`, 1);
  s.offer('x', 't2', 'dl-x', 1, 50);
  assert.equal(s.hasOpenOffer('t1'), true);
  assert.deepEqual(s.closeOffers('a', 'dl-a', 2), ['t1']);
  assert.deepEqual(s.closeOffers('b', 'dl-b', 2), ['t1']);
  assert.equal(s.hasOpenOffer('t1'), true, 'c is still downloading');
  assert.deepEqual(s.openOfferDevices('t1'), ['c']);
  s.closeOffers('c', 'dl-c', 3);
  assert.equal(s.hasOpenOffer('t1'), false);
  assert.equal(s.hasOpenOffer('t2'), true, 'another transfer is not affected');
  assert.deepEqual(s.closeExpiredOffers(60), ['t2']);
  assert.equal(s.hasOpenOffer('t2'), false);
});

// the latency gate compares a device's p50 on the new model with its last p50 on the model it ran before: that
// baseline must be found however many reports came after it (it was looked for in the newest 100 only)
test('latestP50: the newest p50 of the device on that model version, even behind 150 newer reports; null if none', () => {
  const db = openDatabase(':memory:');
  migrateRoom(db, 'delivery', DELIVERY_MIGRATIONS);
  db.pragma('foreign_keys = OFF');
  const s = new DeliveryStore(db);
  const result = (p50: number): BenchmarkResult => ({ runtime: 'onnxruntime-cpu', threads: 1, sessionCreateMs: 1, latencyMs: { p50, p90: p50, p99: p50, mean: p50, min: p50, max: p50, count: 10 }, throughputPerSecond: 1, throughputBatchSize: 1, peakRssBytes: 1, fileSizeBytes: 1, accuracy: null, agreement: null, integerKernelShare: null, topOps: [] });
  const add = (deviceId: string, modelId: string, version: number, p50: number) => s.addBenchmark({ deviceId, modelId, version, rolloutId: null, result: result(p50), baseline: null, speedup: null, at: 1 });
  add('d1', 'cnn', 1, 4.5);
  add('d1', 'cnn', 1, 3.25);
  add('d2', 'cnn', 1, 9);
  add('d1', 'cnn', 2, 7);
  for (let i = 0; i < 150; i++) add('d1', 'other', 1, 1);
  assert.equal(s.latestP50('d1', 'cnn', 1), 3.25, 'the newest of two');
  assert.equal(s.benchmarks('d1').some((b) => b.modelId === 'cnn'), false, 'out of the newest 100 (where the gate looked before)');
  assert.equal(s.latestP50('d1', 'cnn', 2), 7);
  assert.equal(s.latestP50('d2', 'cnn', 1), 9);
  assert.equal(s.latestP50('d1', 'cnn', 3), null);
  assert.equal(s.latestP50('d3', 'cnn', 1), null);
});

// the model report reads its numbers from columns (delivery migration 4): written with each report, and filled by
// the migration for the rows before it; the report must say what the reports' JSON says
test('benchmark columns: the migration fills them for old rows, addBenchmark writes them, the model report reads them', async () => {
  const { modelReport } = await import('../rollouts/reports.ts');
  const db = openDatabase(':memory:');
  migrateRoom(db, 'delivery', DELIVERY_MIGRATIONS.slice(0, 3));
  db.pragma('foreign_keys = OFF');
  const result = (p50: number, extra: Partial<BenchmarkResult> = {}): BenchmarkResult => ({ runtime: 'onnxruntime-cpu', threads: 2, sessionCreateMs: 3, latencyMs: { p50, p90: p50 * 1.5, p99: p50 * 2, mean: p50, min: p50 / 2, max: p50 * 3, count: 40 }, throughputPerSecond: 1000 / p50, throughputBatchSize: 8, peakRssBytes: 1e6 * p50, fileSizeBytes: 1, accuracy: 0.9, agreement: 0.98, integerKernelShare: 0.75, topOps: [], ...extra });
  const old = db.prepare('INSERT INTO delivery_benchmarks (device_id, model_id, version, rollout_id, result_json, baseline_json, speedup, at) VALUES (?, ?, ?, NULL, ?, ?, ?, ?)');
  old.run('d1', 'cnn', 1, JSON.stringify(result(2)), JSON.stringify(result(6, { accuracy: 0.91 })), null, 1);
  old.run('d2', 'cnn', 1, JSON.stringify(result(4, { accuracy: null, agreement: null, integerKernelShare: null })), null, null, 2);
  migrateRoom(db, 'delivery', DELIVERY_MIGRATIONS);
  const s = new DeliveryStore(db);
  s.addBenchmark({ deviceId: 'd3', modelId: 'cnn', version: 1, rolloutId: null, result: result(3, { runtime: 'tensorrt' }), baseline: result(4.5), speedup: 1.4, at: 3 });
  s.addBenchmark({ deviceId: 'd1', modelId: 'cnn', version: 2, rolloutId: null, result: result(1.5), baseline: null, speedup: null, at: 4 });

  const rep = modelReport(db, 'cnn', null, () => null);
  const byId = (id: string, v: number) => rep.devices.find((d) => d.deviceId === id && d.version === v)!;
  const want = (r: BenchmarkResult, base: BenchmarkResult | null, speedup: number | null) => ({
    runtime: r.runtime, p50Ms: r.latencyMs.p50, p90Ms: r.latencyMs.p90, p99Ms: r.latencyMs.p99, throughputPerSecond: r.throughputPerSecond, peakRssBytes: r.peakRssBytes,
    accuracy: r.accuracy, agreement: r.agreement, integerKernelShare: r.integerKernelShare, fp32P50Ms: base?.latencyMs.p50 ?? null, fp32Accuracy: base?.accuracy ?? null,
    speedupVsFp32: speedup ?? (base ? base.latencyMs.p50 / r.latencyMs.p50 : null),
  });
  const pick = (d: Record<string, unknown>) => Object.fromEntries(Object.keys(want(result(1), null, null)).map((k) => [k, d[k]]));
  assert.deepEqual(pick(byId('d1', 1)), want(result(2), result(6, { accuracy: 0.91 }), null), 'an old row, filled by the migration');
  assert.deepEqual(pick(byId('d2', 1)), want(result(4, { accuracy: null, agreement: null, integerKernelShare: null }), null, null), 'nulls stay null');
  assert.deepEqual(pick(byId('d3', 1)), want(result(3, { runtime: 'tensorrt' }), result(4.5), 1.4), 'a new row');
  assert.deepEqual(pick(byId('d1', 2)), want(result(1.5), null, null));
  assert.equal(rep.devices.length, 4);
  assert.equal(s.latestP50('d1', 'cnn', 1), 2, 'the gate baseline from the filled column');
});
