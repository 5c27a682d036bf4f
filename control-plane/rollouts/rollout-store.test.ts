import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RolloutCreateSchema } from '../../shared/rollouts.ts';
import { migrateRoom, openDatabase } from '../store/db.ts';
import { ROLLOUT_MIGRATIONS, ROLLOUT_VIEW_SQL, RolloutStore } from './rollout-store.ts';

// takers() runs on every device (re)connect: it answers from memory, and every write to the rollouts table
// (a new rollout, a state, a wave) is seen by the very next call.

const spec = (profileId: string, version: number, labels: Record<string, string> = {}) => RolloutCreateSchema.parse({ models: [{ modelId: `cnn-${profileId}`, version, profileId }], labels });

function store(): RolloutStore {
  const db = openDatabase(':memory:');
  migrateRoom(db, 'rollouts', ROLLOUT_MIGRATIONS);
  return new RolloutStore(db);
}

test('takers: running, paused and succeeded rollouts, newest first, read once until one changes', () => {
  const s = store();
  assert.deepEqual(s.takers(), []);
  s.create({ id: 'ro-a', name: 'a', spec: spec('generic-cpu', 1), waveSizes: [1] }, [], 10);
  s.create({ id: 'ro-b', name: 'b', spec: spec('generic-cpu', 2), waveSizes: [1] }, [], 20);
  // same millisecond: the one created later is newer
  s.create({ id: 'ro-c', name: 'c', spec: spec('generic-cpu', 3), waveSizes: [1, 2] }, [], 20);
  assert.deepEqual(s.takers().map((r) => r.id), ['ro-c', 'ro-b', 'ro-a']);
  const reads = s.takersReads;
  for (let i = 0; i < 5; i++) s.takers();
  assert.equal(s.takersReads, reads, 'answered from memory');

  s.setState('ro-b', 'aborted', 30, 'gate');
  assert.deepEqual(s.takers().map((r) => r.id), ['ro-c', 'ro-a'], 'an aborted rollout takes nobody');
  s.setState('ro-c', 'rolled-back', 31);
  s.setState('ro-a', 'succeeded', 32);
  assert.deepEqual(s.takers().map((r) => [r.id, r.state]), [['ro-a', 'succeeded']]);
  s.setState('ro-a', 'paused', 33);
  assert.equal(s.takers()[0]!.state, 'paused');
  s.setWave('ro-a', 1, 34);
  assert.equal(s.takers()[0]!.currentWave, 1, 'a new wave is seen (late devices join the current wave)');
  assert.equal(s.takersReads, reads + 4);
  // device rows and events do not touch the rollouts table
  s.addDevice('ro-a', { deviceId: 'd1', profileId: 'generic-cpu', modelId: 'cnn-generic-cpu', modelVersion: 1, previousModel: null, wave: 0 }, 35);
  s.updateDevice('ro-a', 'd1', { state: 'sent', sentAt: 35 }, 35);
  s.event('ro-a', 'device-joined', 'd1', null, 35);
  s.takers();
  assert.equal(s.takersReads, reads + 4);
});

test('takers: shared rows cannot be changed, and nothing read inside a transaction is kept', () => {
  const s = store();
  s.create({ id: 'ro-a', name: 'a', spec: spec('generic-cpu', 1, { site: 'x' }), waveSizes: [1] }, [], 10);
  const [r] = s.takers();
  assert.throws(() => ((r as { state: string }).state = 'aborted'));
  assert.throws(() => ((r!.spec.labels as Record<string, string>)['site'] = 'y'));
  assert.throws(() => (r!.spec.models as unknown[]).push({}));

  // a create that rolls back: what was read inside it is not kept, the next call reads the table again
  const db = (s as unknown as { db: import('../store/db.ts').Db }).db;
  assert.throws(() =>
    db.transaction(() => {
      s.create({ id: 'ro-b', name: 'b', spec: spec('generic-cpu', 2), waveSizes: [1] }, [], 20);
      assert.deepEqual(s.takers().map((x) => x.id), ['ro-b', 'ro-a'], 'seen inside the transaction');
      throw new Error('rolled back');
    })(),
  );
  assert.deepEqual(s.takers().map((x) => x.id), ['ro-a']);
});

test('a new rollout takes over the devices older open rollouts have not finished with, and leaves what they finished', () => {
  const s = store();
  const dev = (deviceId: string, wave = 0) => ({ deviceId, profileId: 'generic-cpu', modelId: 'cnn-generic-cpu', modelVersion: 1, previousModel: null, wave });
  s.create({ id: 'ro-a', name: 'a', spec: spec('generic-cpu', 1), waveSizes: [1, 3] }, [dev('d1'), dev('d2', 1), dev('d3', 1), dev('d4', 1)], 10);
  s.updateDevice('ro-a', 'd1', { state: 'active', installed: true, measured: true }, 11);
  s.updateDevice('ro-a', 'd2', { state: 'downloading', sentAt: 11 }, 11);
  s.updateDevice('ro-a', 'd3', { state: 'failed', reason: 'install failed' }, 11);
  s.setState('ro-a', 'paused', 12);
  // an aborted rollout sends nothing more: its pending rows are left as they are
  s.create({ id: 'ro-x', name: 'x', spec: spec('generic-cpu', 2), waveSizes: [1] }, [dev('d5')], 13);
  s.setState('ro-x', 'aborted', 14, 'gate');

  const { takenOver } = s.create({ id: 'ro-b', name: 'b', spec: spec('generic-cpu', 3), waveSizes: [4] }, ['d1', 'd2', 'd3', 'd4', 'd5'].map((d) => dev(d)), 20);
  assert.equal(takenOver, 2, 'd2 (in flight) and d4 (pending) from ro-a');
  assert.deepEqual(s.devices('ro-a').map((d) => [d.deviceId, d.state]), [['d1', 'active'], ['d3', 'failed']]);
  assert.equal(s.deviceCount('ro-a'), 2, 'the list counts what the rollout holds');
  assert.equal(s.deviceCount('ro-none'), 0);
  assert.deepEqual(s.devices('ro-x').map((d) => [d.deviceId, d.state]), [['d5', 'pending']]);
  assert.equal(s.devices('ro-b').length, 5);
  const ev = s.events('ro-a').filter((e) => e.kind === 'device-superseded');
  assert.deepEqual(ev.map((e) => [e.deviceId, e.detail]).sort(), [['d2', 'taken over by rollout ro-b while downloading'], ['d4', 'taken over by rollout ro-b while pending']]);
  assert.match(s.events('ro-b').find((e) => e.kind === 'created')!.detail!, /2 taken over from older rollouts/);

  // a succeeded rollout's late joiner still in flight is taken too; the new rollout's own row is never touched
  s.setState('ro-b', 'succeeded', 30);
  s.updateDevice('ro-b', 'd2', { state: 'sent', sentAt: 30 }, 30);
  assert.deepEqual(s.takeOver('ro-c', 'd2', 31), [{ rolloutId: 'ro-b', state: 'sent' }]);
  assert.equal(s.device('ro-b', 'd2'), null);
  assert.deepEqual(s.takeOver('ro-b', 'd4', 32), [], 'a rollout does not take a device from itself');
  assert.equal(s.device('ro-b', 'd4')!.state, 'pending');
});

// GET /rollouts/:id reads its waves from waveCounts/waveMedianP50 and one page of devicePage: they must agree with the
// whole rollout read row by row, and their plans must not read the rollout's rows (an index, no sort)
test('devicePage pages every device once in wave order; waveCounts and waveMedianP50 agree with the rows; both on indexes', () => {
  const s = store();
  const STATES = ['pending', 'sent', 'active', 'failed', 'active', 'rolled-back', 'downloading'] as const;
  const devs = Array.from({ length: 257 }, (_, i) => ({ deviceId: `d-${String((i * 37) % 257).padStart(3, '0')}`, profileId: 'generic-cpu', modelId: 'cnn-generic-cpu', modelVersion: 2, previousModel: null, wave: i < 1 ? 0 : i < 30 ? 1 : 2 }));
  s.create({ id: 'ro-p', name: 'p', spec: spec('generic-cpu', 2), waveSizes: [1, 29, 227] }, devs, 10);
  // another rollout's rows never show in this one's pages or counts
  s.create({ id: 'ro-q', name: 'q', spec: spec('generic-cpu', 3), waveSizes: [3] }, devs.slice(0, 3).map((d) => ({ ...d, deviceId: `q-${d.deviceId}`, wave: 0 })), 11);
  devs.forEach((d, i) => s.updateDevice('ro-p', d.deviceId, { state: STATES[i % STATES.length], ...(i % 3 ? { p50Ms: ((i * 7919) % 1000) / 10 } : {}) }, 12));
  const all = s.devices('ro-p');
  assert.equal(all.length, 257);

  for (const limit of [1, 10, 64, 256, 257, 258]) {
    const seen: string[] = [];
    let after = null;
    let pages = 0;
    for (;;) {
      const p = s.devicePage('ro-p', { after, limit });
      assert.ok(p.rows.length <= limit);
      seen.push(...p.rows.map((d) => `${d.wave}:${d.deviceId}`));
      pages++;
      if (!p.next) break;
      assert.equal(p.rows.length, limit, 'only the last page is short');
      after = p.next;
    }
    assert.deepEqual(seen, all.map((d) => `${d.wave}:${d.deviceId}`), `limit ${limit}: every device once, wave then id order`);
    assert.equal(pages, Math.max(1, Math.ceil(257 / limit)), `limit ${limit}: no empty page after an exact fit`);
  }
  const failedWave2 = s.devicePage('ro-p', { limit: 1000, state: 'failed', wave: 2 }).rows;
  assert.deepEqual(failedWave2.map((d) => d.deviceId), all.filter((d) => d.state === 'failed' && d.wave === 2).map((d) => d.deviceId));
  assert.ok(failedWave2.length > 0);
  // filtered pages continue from a cursor too
  const firstTwo = s.devicePage('ro-p', { limit: 2, state: 'active' });
  assert.deepEqual(s.devicePage('ro-p', { limit: 1, state: 'active', after: firstTwo.rows[0]! }).rows[0]!.deviceId, firstTwo.rows[1]!.deviceId);

  const counts = s.waveCounts('ro-p');
  for (const wave of [0, 1, 2]) {
    for (const st of new Set(STATES)) {
      const rows = all.filter((d) => d.wave === wave && d.state === st);
      const c = counts.find((x) => x.wave === wave && x.state === st);
      assert.equal(c?.n ?? 0, rows.length, `wave ${wave} ${st}`);
      assert.equal(c?.measured ?? 0, rows.filter((d) => d.p50Ms !== null).length);
    }
    const xs = all.filter((d) => d.wave === wave && d.p50Ms !== null).map((d) => d.p50Ms!).sort((a, b) => a - b);
    const measured = counts.filter((c) => c.wave === wave).reduce((n, c) => n + c.measured, 0);
    const want = xs.length === 0 ? null : xs.length % 2 ? xs[(xs.length - 1) / 2]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2;
    assert.equal(s.waveMedianP50('ro-p', wave, measured), want, `wave ${wave} median of ${xs.length}`);
  }
  assert.equal(counts.reduce((n, c) => n + c.n, 0), 257);

  const db = (s as unknown as { db: import('../store/db.ts').Db }).db;
  const plan = (sql: string, ...args: unknown[]) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail).join(' | ');
  assert.match(plan(ROLLOUT_VIEW_SQL.waveCounts, 'ro-p'), /USING COVERING INDEX rollout_devices_wave_state/);
  const pagePlan = plan(
    ROLLOUT_VIEW_SQL.devicePage,
    { id: 'ro-p', afterWave: 1, afterDevice: 'd-100', state: null, wave: null, limit: 10 },
  );
  assert.match(pagePlan, /USING INDEX rollout_devices_wave \(rollout_id=\? AND \(wave,device_id\)>\(\?,\?\)\)/);
  assert.doesNotMatch(pagePlan, /TEMP B-TREE/, 'no sort of the whole rollout for a page');
});
