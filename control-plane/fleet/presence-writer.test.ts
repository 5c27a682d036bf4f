import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROTOCOL_VERSION, type Heartbeat } from '../../shared/messages.ts';
import { openDatabase, type Db } from '../store/db.ts';
import { DeviceStore } from '../store/devices.ts';
import { PresenceWriter } from './presence-writer.ts';

const hb = (i: number): Heartbeat => ({
  v: PROTOCOL_VERSION,
  msgId: `m-${i}-${Math.random().toString(36).slice(2)}`,
  ts: 1,
  type: 'heartbeat',
  agentVersion: '1.2.3',
  uptimeSeconds: i,
  load1: 0,
  cpuPercent: null,
  memUsedBytes: 1,
  memTotalBytes: 2,
  temperatureC: null,
  activeModel: null,
});

/** A real SQLite whose transactions and statement preparations are counted. */
function countingStore(devices: number): { db: Db; store: DeviceStore; transactions: () => number; prepares: () => number } {
  const db = openDatabase(':memory:');
  let transactions = 0;
  let prepares = 0;
  const transaction = db.transaction.bind(db);
  const prepare = db.prepare.bind(db);
  db.transaction = ((fn: (...a: unknown[]) => unknown) => {
    const tx = transaction(fn);
    return Object.assign((...a: unknown[]) => (transactions++, tx(...a)), tx);
  }) as typeof db.transaction;
  db.prepare = ((sql: string) => (prepares++, prepare(sql))) as typeof db.prepare;
  const store = new DeviceStore(db);
  for (let i = 0; i < devices; i++) store.createEnrolled(`d${i}`, 'h', 't', 1);
  return { db, store, transactions: () => transactions, prepares: () => prepares };
}

test('heartbeats that arrive within one tick are written in ONE transaction, with statements prepared once', async () => {
  const { store, transactions, prepares } = countingStore(500);
  const writer = new PresenceWriter(store, { flushMs: 20 });
  const tx0 = transactions();
  for (let i = 0; i < 500; i++) writer.enqueue({ kind: 'heartbeat', deviceId: `d${i}`, heartbeat: hb(i), at: 1000 + i });
  assert.equal(transactions(), tx0, 'nothing written before the tick ends');
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(transactions() - tx0, 1);
  assert.equal(store.get('d499')?.heartbeat?.uptimeSeconds, 499);
  assert.equal(store.get('d499')?.status, 'online', 'a heartbeat marks an unknown device online');
  // another round: no new statements, one more transaction
  const p0 = prepares();
  for (let i = 0; i < 500; i++) writer.enqueue({ kind: 'heartbeat', deviceId: `d${i}`, heartbeat: hb(i), at: 2000 + i });
  writer.flush();
  assert.equal(transactions() - tx0, 2);
  assert.equal(prepares(), p0, 'prepared statements are reused');
});

test('a full batch is written at once; the order of a batch keeps the late-will rule', () => {
  const { store, transactions } = countingStore(3);
  const writer = new PresenceWriter(store, { flushMs: 10_000, maxBatch: 4 });
  const tx0 = transactions();
  // connection stamped 200 comes online, then the will of the older connection (stamp 100) arrives late
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'online', stamp: 100, reason: 'status', at: 1 });
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'online', stamp: 200, reason: 'status', at: 2 });
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'offline', stamp: 100, reason: 'will-or-goodbye', at: 3 });
  assert.equal(transactions(), tx0);
  // d1: online then its own will (same stamp): offline is earned
  writer.enqueue({ kind: 'status', deviceId: 'd1', status: 'online', stamp: 50, reason: 'status', at: 4 });
  assert.equal(transactions() - tx0, 1, 'the fourth op filled the batch');
  writer.enqueue({ kind: 'status', deviceId: 'd1', status: 'offline', stamp: 50, reason: 'will-or-goodbye', at: 5 });
  writer.stop();
  assert.equal(store.get('d0')?.status, 'online', 'late will refused');
  assert.equal(store.get('d1')?.status, 'offline');
  assert.deepEqual(store.statusHistory('d0').map((h) => h.status), ['online']);
});

test('the sweep writes queued heartbeats first: a device heard a moment ago is not marked offline', () => {
  const { store } = countingStore(2);
  const changes: string[] = [];
  const writer = new PresenceWriter(store, { flushMs: 10_000, onChanged: (c) => changes.push(`${c.deviceId}:${c.status}:${c.reason}`) });
  writer.enqueue({ kind: 'heartbeat', deviceId: 'd0', heartbeat: hb(0), at: 1000 });
  writer.enqueue({ kind: 'heartbeat', deviceId: 'd1', heartbeat: hb(1), at: 1000 });
  writer.flush();
  writer.enqueue({ kind: 'heartbeat', deviceId: 'd0', heartbeat: hb(2), at: 9000 }); // queued, not yet written
  assert.deepEqual(writer.sweep(5000, 9500), ['d1']);
  assert.equal(store.get('d0')?.status, 'online');
  assert.deepEqual(changes, ['d0:online:heartbeat', 'd1:online:heartbeat', 'd1:offline:missed-heartbeats']);
});

/** Resolves on the writer's next hold outcome for a device. */
function holdEvents(): { onHold: (id: string, o: 'held' | 'written' | 'dropped') => void; next: (id: string, o: 'written' | 'dropped') => Promise<number>; log: string[] } {
  const log: string[] = [];
  const waiters: { key: string; resolve: (t: number) => void }[] = [];
  return {
    log,
    onHold: (id, o) => {
      log.push(`${id}:${o}`);
      for (const w of waiters.filter((w) => w.key === `${id}:${o}`)) w.resolve(performance.now());
    },
    next: (id, o) => new Promise((resolve) => waiters.push({ key: `${id}:${o}`, resolve })),
  };
}

test("a will from a connection never heard coming online is held; the device's next connection coming online drops it", async () => {
  const { store } = countingStore(2);
  const h = holdEvents();
  const writer = new PresenceWriter(store, { flushMs: 5, holdMs: 300, onHold: h.onHold });
  // d0's connection stamped 100 came online; a reconnect stamped 200 broke before its CONNACK: its will arrives
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'online', stamp: 100, reason: 'status', at: 1 });
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'offline', stamp: 200, reason: 'will-or-goodbye', at: 2, holdUnannounced: true });
  writer.flush();
  assert.equal(store.get('d0')?.status, 'online', 'not written while held');
  assert.equal(writer.holding, 1);
  const dropped = h.next('d0', 'dropped');
  // the next reconnect (stamped 300) comes online within the hold
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'online', stamp: 300, reason: 'status', at: 3 });
  await dropped;
  assert.equal(writer.holding, 0);
  assert.equal(store.get('d0')?.status, 'online');
  assert.deepEqual(store.statusHistory('d0').map((x) => x.status), ['online'], 'never recorded offline');
  assert.deepEqual(h.log, ['d0:held', 'd0:dropped']);
  writer.stop();
});

test('a held will is written after the hold when the device does not come back; wills of announced connections and goodbyes are written at once', async () => {
  const { store } = countingStore(3);
  const h = holdEvents();
  const holdMs = 200;
  const writer = new PresenceWriter(store, { flushMs: 5, holdMs, onHold: h.onHold });
  for (const d of ['d0', 'd1', 'd2']) writer.enqueue({ kind: 'status', deviceId: d, status: 'online', stamp: 100, reason: 'status', at: 1 });
  writer.flush();
  const t0 = performance.now();
  const written = h.next('d0', 'written');
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'offline', stamp: 200, reason: 'will-or-goodbye', at: 5, holdUnannounced: true });
  // d1: the will of the connection that did come online (a kill); d2: the agent's goodbye, same stamp
  writer.enqueue({ kind: 'status', deviceId: 'd1', status: 'offline', stamp: 100, reason: 'will-or-goodbye', at: 6, holdUnannounced: true });
  writer.enqueue({ kind: 'status', deviceId: 'd2', status: 'offline', stamp: 100, reason: 'will-or-goodbye', at: 7, holdUnannounced: true });
  writer.flush();
  assert.equal(store.get('d1')?.status, 'offline', 'a killed connection is offline at once');
  assert.equal(store.get('d2')?.status, 'offline', 'a goodbye is offline at once');
  assert.equal(store.get('d0')?.status, 'online', 'held');
  const at = await written;
  assert.ok(at - t0 >= holdMs - 5, `written ${(at - t0).toFixed(0)} ms after it arrived, not before the ${holdMs} ms hold`);
  assert.equal(store.get('d0')?.status, 'offline');
  assert.deepEqual(store.statusHistory('d0', 1), [{ status: 'offline', reason: 'will-held', at: 5 }], 'recorded at the time the will arrived');
  writer.stop();
});

test('stop drops held wills (a restart is what they are held for); the late-will rule still holds for held ones', async () => {
  const { store } = countingStore(2);
  const h = holdEvents();
  const writer = new PresenceWriter(store, { flushMs: 5, holdMs: 60_000, onHold: h.onHold });
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'online', stamp: 100, reason: 'status', at: 1 });
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'offline', stamp: 200, reason: 'will-or-goodbye', at: 2, holdUnannounced: true });
  // a will older than the recorded online is refused, as ever, and not held
  writer.enqueue({ kind: 'status', deviceId: 'd1', status: 'online', stamp: 100, reason: 'status', at: 3 });
  writer.enqueue({ kind: 'status', deviceId: 'd1', status: 'offline', stamp: 50, reason: 'will-or-goodbye', at: 4, holdUnannounced: true });
  writer.flush();
  assert.equal(writer.holding, 1);
  writer.stop();
  assert.equal(writer.holding, 0);
  assert.equal(store.get('d0')?.status, 'online');
  assert.equal(store.get('d1')?.status, 'online');
  assert.deepEqual(h.log, ['d0:held']);
});

test('a will queued just before stop is not held by the stop: no timer outlives the writer, nothing is written after', async () => {
  const { store } = countingStore(1);
  const h = holdEvents();
  const writer = new PresenceWriter(store, { flushMs: 60_000, holdMs: 50, onHold: h.onHold });
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'online', stamp: 100, reason: 'status', at: 1 });
  writer.flush();
  // a reconnect's will (never announced online) arrives while the control plane stops: still queued at stop()
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'offline', stamp: 200, reason: 'will-or-goodbye', at: 2, holdUnannounced: true });
  writer.stop();
  assert.equal(writer.holding, 0, 'no hold started by the stop');
  assert.deepEqual(h.log, ['d0:dropped']);
  // anything after the stop is not queued (no flush timer to fire after the database closed)
  writer.enqueue({ kind: 'heartbeat', deviceId: 'd0', heartbeat: hb(1), at: 3 });
  assert.equal(writer.pending, 0);
  // past the hold: had the stop held it, its timer would have written the will by now
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(store.get('d0')?.status, 'online');
  assert.deepEqual(store.statusHistory('d0').map((x) => x.status), ['online']);
});

test('held wills are bounded by the fleet: a device flapping 1,000 connections holds one will, its newest', async () => {
  const { store } = countingStore(2);
  const h = holdEvents();
  const writer = new PresenceWriter(store, { flushMs: 5, holdMs: 200, onHold: h.onHold });
  writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'online', stamp: 100, reason: 'status', at: 1 });
  writer.enqueue({ kind: 'status', deviceId: 'd1', status: 'online', stamp: 100, reason: 'status', at: 1 });
  for (let i = 1; i <= 1000; i++) writer.enqueue({ kind: 'status', deviceId: 'd0', status: 'offline', stamp: 100 + i, reason: 'will-or-goodbye', at: 1 + i, holdUnannounced: true });
  writer.enqueue({ kind: 'status', deviceId: 'd1', status: 'offline', stamp: 200, reason: 'will-or-goodbye', at: 5, holdUnannounced: true });
  writer.flush();
  assert.equal(writer.holding, 2, 'one held will per device, not one per connection');
  const written = h.next('d0', 'written');
  await written;
  assert.deepEqual(store.statusHistory('d0', 1), [{ status: 'offline', reason: 'will-held', at: 1001 }], "the newest will is the one written");
  assert.equal(h.log.filter((x) => x === 'd0:dropped').length, 999, 'each superseded will counted as dropped');
  writer.stop();
});
