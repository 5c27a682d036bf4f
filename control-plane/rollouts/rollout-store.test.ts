import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RolloutCreateSchema } from '../../shared/rollouts.ts';
import { migrateRoom, openDatabase } from '../store/db.ts';
import { ROLLOUT_MIGRATIONS, RolloutStore } from './rollout-store.ts';

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
