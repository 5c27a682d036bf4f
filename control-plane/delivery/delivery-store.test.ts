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
