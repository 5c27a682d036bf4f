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
