import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TuningCreateSchema } from '../../shared/tuning.ts';
import { migrateRoom, openDatabase } from '../store/db.ts';
import { RESEND_ON_BIRTH_SQL, TUNING_MIGRATIONS, TuningStore } from './tuning-store.ts';

// resendAllSentTo runs on every device (re)connect: it must touch exactly that device's unanswered evaluations of the
// tunings still evaluating, and find them by key (no walk over the tunings or the evaluations)
test('resendAllSentTo: only the device\'s sent evaluations of evaluating tunings go back to pending; on the primary key', () => {
  const db = openDatabase(':memory:');
  migrateRoom(db, 'tuning', TUNING_MIGRATIONS);
  const s = new TuningStore(db);
  const request = TuningCreateSchema.parse({ candidates: [{ profileId: 'generic-cpu', modelId: 'cnn-x', version: 1 }] });
  s.insert({ id: 'tu-a', name: 'a', state: 'evaluating', request, profiles: ['generic-cpu'] }, 1);
  s.insert({ id: 'tu-b', name: 'b', state: 'evaluating', request, profiles: ['generic-cpu'] }, 2);
  s.insert({ id: 'tu-c', name: 'c', state: 'awaiting-approval', request, profiles: ['generic-cpu'] }, 3);
  const ev = (tuningId: string, deviceId: string, version: number) => ({ tuningId, profileId: 'generic-cpu', key: `k${version}`, deviceId, modelId: 'cnn-x', version });
  s.addEvaluations([ev('tu-a', 'd1', 1), ev('tu-a', 'd1', 2), ev('tu-a', 'd1', 3), ev('tu-a', 'd2', 1), ev('tu-b', 'd1', 1), ev('tu-c', 'd1', 1)], 5);
  for (const e of [ev('tu-a', 'd1', 1), ev('tu-a', 'd1', 2), ev('tu-a', 'd2', 1), ev('tu-b', 'd1', 1), ev('tu-c', 'd1', 1)]) assert.ok(s.setEvaluation(e, ['pending'], { state: 'sent', sentAt: 6 }, 6));
  assert.ok(s.setEvaluation(ev('tu-a', 'd1', 2), ['sent'], { state: 'done' }, 7));

  assert.equal(s.resendAllSentTo('d1', 10), 2, 'tu-a v1 and tu-b v1');
  const states = (id: string) => s.evaluations(id).map((e) => `${e.deviceId}/${e.version}:${e.state}`);
  assert.deepEqual(states('tu-a'), ['d1/1:pending', 'd1/2:done', 'd1/3:pending', 'd2/1:sent']);
  assert.deepEqual(states('tu-b'), ['d1/1:pending']);
  assert.deepEqual(states('tu-c'), ['d1/1:sent'], 'a tuning past evaluating is left alone');
  assert.equal(s.resendAllSentTo('d1', 11), 0, 'nothing sent is left to ask again');
  assert.equal(s.resendAllSentTo('d-unknown', 11), 0);

  const plan = (db.prepare(`EXPLAIN QUERY PLAN ${RESEND_ON_BIRTH_SQL}`).all(1, 'd1') as { detail: string }[]).map((r) => r.detail).join(' | ');
  assert.match(plan, /SEARCH tuning_evaluations USING INDEX sqlite_autoindex_tuning_evaluations_1 \(tuning_id=\? AND device_id=\?\)/, plan);
  assert.match(plan, /SEARCH tunings USING (COVERING )?INDEX tunings_state \(state=\?\)/, plan);
});

// GET /tunings lists summaries without reading notes, decisions or evaluation results: the counts and fields must
// still be what the full rows say
test('summaries: newest first, per-state evaluation counts, the objective from the request, state filter and paging', () => {
  const db = openDatabase(':memory:');
  migrateRoom(db, 'tuning', TUNING_MIGRATIONS);
  const s = new TuningStore(db);
  const request = (objective: string) => TuningCreateSchema.parse({ candidates: [{ profileId: 'generic-cpu', modelId: 'cnn-x', version: 1 }], objective });
  s.insert({ id: 'tu-1', name: 'one', state: 'evaluating', request: request('lowest-p50'), profiles: ['generic-cpu', 'x86-64-vnni'] }, 10);
  s.insert({ id: 'tu-2', name: 'two', state: 'done', request: request('highest-accuracy'), profiles: ['generic-cpu'] }, 20);
  s.insert({ id: 'tu-3', name: 'three', state: 'evaluating', request: request('lowest-p50'), profiles: ['armv82-dotprod'] }, 30);
  s.update('tu-2', { rolloutId: 'ro-abc', trainingJobId: 'job-1', finishedAt: 25, notes: ['x'.repeat(2000)] }, 25);
  const ev = (tuningId: string, deviceId: string) => ({ tuningId, profileId: 'generic-cpu', key: 'k', deviceId, modelId: 'cnn-x', version: 1 });
  s.addEvaluations(['a', 'b', 'c', 'd'].map((d) => ev('tu-1', d)), 11);
  s.setEvaluation(ev('tu-1', 'a'), ['pending'], { state: 'sent' }, 12);
  s.setEvaluation(ev('tu-1', 'b'), ['pending'], { state: 'failed', reason: 'x' }, 12);
  s.setEvaluation(ev('tu-1', 'c'), ['pending'], { state: 'missing' }, 12);

  const all = s.summaries({ limit: 10, offset: 0 });
  assert.equal(all.total, 3);
  assert.deepEqual(all.items.map((t) => t.id), ['tu-3', 'tu-2', 'tu-1']);
  const one = all.items[2]!;
  assert.deepEqual(one.evaluations, { pending: 1, sent: 1, done: 0, failed: 1, missing: 1, cancelled: 0 });
  assert.deepEqual([one.objective, one.profiles, one.name, one.state], ['lowest-p50', ['generic-cpu', 'x86-64-vnni'], 'one', 'evaluating']);
  const two = all.items[1]!;
  const row = s.get('tu-2')!;
  assert.deepEqual(
    [two.objective, two.rolloutId, two.trainingJobId, two.finishedAt, two.createdAt, two.updatedAt],
    [row.request.objective, row.rolloutId, row.trainingJobId, row.finishedAt, row.createdAt, row.updatedAt],
  );
  assert.equal(two.objective, 'highest-accuracy');
  assert.deepEqual(two.evaluations, { pending: 0, sent: 0, done: 0, failed: 0, missing: 0, cancelled: 0 });
  assert.deepEqual(s.summaries({ state: 'evaluating', limit: 1, offset: 1 }), { items: [all.items[2]], total: 2 });
});
