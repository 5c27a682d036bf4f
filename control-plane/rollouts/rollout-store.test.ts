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
