import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TuningCreateSchema } from '../../shared/tuning.ts';
import { migrateRoom, openDatabase } from '../store/db.ts';
import { TuningService } from './tuning-service.ts';
import { TUNING_MIGRATIONS, TuningStore } from './tuning-store.ts';
import { benchmarkResult as result } from '../../test/helpers/benchmark-result.ts';

// The tuning page polls GET /tunings/:id every 2 s; the view is kept until the store writes to that tuning. Every kind
// of write must give a new view equal to one built from scratch, and a poll with no write in between the same one.
test('tuning view: kept between polls, built again after every kind of write to its tuning, always what a fresh build gives', () => {
  const db = openDatabase(':memory:');
  migrateRoom(db, 'tuning', TUNING_MIGRATIONS);
  const s = new TuningStore(db);
  const svc = new TuningService({ store: s } as unknown as ConstructorParameters<typeof TuningService>[0]);
  /** A service with nothing kept: what the view must equal. */
  const fresh = () => new TuningService({ store: s } as unknown as ConstructorParameters<typeof TuningService>[0]).view('tu-1');
  const request = TuningCreateSchema.parse({ candidates: [{ profileId: 'generic-cpu', modelId: 'cnn-x', version: 1 }] });
  s.insert({ id: 'tu-1', name: 'one', state: 'evaluating', request, profiles: ['generic-cpu'] }, 1);
  s.insert({ id: 'tu-2', name: 'two', state: 'evaluating', request, profiles: ['generic-cpu'] }, 1);
  const ev = (tuningId: string, deviceId: string, key: string) => ({ tuningId, profileId: 'generic-cpu', key, deviceId, modelId: 'cnn-x', version: key === 'a' ? 1 : 2 });

  let last = svc.view('tu-1')!;
  assert.deepEqual(last, fresh());
  assert.equal(svc.view('tu-1'), last, 'no write in between: the same view');
  assert.equal(svc.view('nope'), null);

  /** After `write`, the view of tu-1 is built again (or not) and equals a fresh build either way. */
  const after = (what: string, write: () => void, rebuilt: boolean) => {
    write();
    const v = svc.view('tu-1')!;
    assert.deepEqual(v, fresh(), `${what}: the view is what a fresh build gives`);
    if (rebuilt) assert.notEqual(v, last, `${what}: built again`);
    else assert.equal(v, last, `${what}: kept`);
    last = v;
  };
  after('candidates added', () => s.addCandidates(['a', 'b'].map((key) => ({ tuningId: 'tu-1', profileId: 'generic-cpu', key, modelId: 'cnn-x', version: key === 'a' ? 1 : 2, kind: 'int8', recipeId: null, configured: true, pytorchAccuracy: 0.9, runtimeAccuracy: 0.9, runtimeAgreement: 1 }))), true);
  after('evaluations added', () => s.addEvaluations([ev('tu-1', 'd1', 'a'), ev('tu-1', 'd1', 'b'), ev('tu-1', 'd2', 'a'), ev('tu-1', 'd2', 'b')], 2), true);
  assert.deepEqual(last.evaluations, { pending: 4, sent: 0, done: 0, failed: 0, missing: 0, cancelled: 0 });
  after('an evaluation sent', () => assert.ok(s.setEvaluation(ev('tu-1', 'd1', 'a'), ['pending'], { state: 'sent', sentAt: 3 }, 3)), true);
  after('a guarded update that changed nothing', () => assert.equal(s.setEvaluation(ev('tu-1', 'd1', 'a'), ['pending'], { state: 'sent', sentAt: 4 }, 4), false), false);
  after('another tuning written', () => {
    s.addEvaluations([ev('tu-2', 'd1', 'a')], 4);
    s.update('tu-2', { notes: ['x'] }, 4);
  }, false);
  after('an evaluation done with its result', () => assert.ok(s.setEvaluation(ev('tu-1', 'd1', 'a'), ['sent'], { state: 'done', result: result(1.5) }, 5)), true);
  assert.deepEqual(last.candidates.find((c) => c.key === 'a')!.measurements.map((m) => [m.deviceId, m.p50]), [['d1', 1.5]]);
  after('a device reconnected (its sent evaluations, any tuning)', () => {
    assert.ok(s.setEvaluation(ev('tu-1', 'd2', 'a'), ['pending'], { state: 'sent', sentAt: 6 }, 6));
    svc.view('tu-1');
    last = svc.view('tu-1')!;
    assert.equal(s.resendAllSentTo('d2', 7), 1);
  }, true);
  after('a reconnect with nothing to ask again', () => assert.equal(s.resendAllSentTo('d9', 8), 0), false);
  after('a restart asks its sent evaluations again', () => {
    assert.ok(s.setEvaluation(ev('tu-1', 'd2', 'b'), ['pending'], { state: 'sent', sentAt: 9 }, 9));
    last = svc.view('tu-1')!;
    assert.equal(s.resendSent('tu-1', 10), 1);
  }, true);
  after('a verdict', () => s.setVerdict('tu-1', 'generic-cpu', 'a', { aggregate: null, status: 'chosen', reasons: ['fastest'] } as never), true);
  assert.deepEqual(last.candidates.find((c) => c.key === 'a')!.reasons, ['fastest']);
  after('a note', () => s.addNote('tu-1', 'hello', 11), true);
  assert.deepEqual(last.notes, ['hello']);
  after('the tuning row updated', () => s.update('tu-1', { state: 'awaiting-approval' }, 12), true);
  after('cancelled: open evaluations dropped', () => s.cancelOpen('tu-1', 13), true);
  assert.equal(last.evaluations.cancelled, 3);
  assert.equal(svc.view('tu-1'), last);
});

test('tuning view: only the few viewed last are kept', () => {
  const db = openDatabase(':memory:');
  migrateRoom(db, 'tuning', TUNING_MIGRATIONS);
  const s = new TuningStore(db);
  const svc = new TuningService({ store: s } as unknown as ConstructorParameters<typeof TuningService>[0]);
  const request = TuningCreateSchema.parse({ candidates: [{ profileId: 'generic-cpu', modelId: 'cnn-x', version: 1 }] });
  for (let i = 0; i < 20; i++) s.insert({ id: `tu-${i}`, name: `t${i}`, state: 'done', request, profiles: ['generic-cpu'] }, i);
  const first = svc.view('tu-0')!;
  for (let i = 1; i < 8; i++) svc.view(`tu-${i}`);
  assert.equal(svc.view('tu-0'), first, 'eight kept: the first is still there (and now the newest)');
  for (let i = 8; i < 20; i++) svc.view(`tu-${i}`);
  const again = svc.view('tu-0')!;
  assert.notEqual(again, first, 'pushed out by twelve others: built again');
  assert.deepEqual(again, first);
  assert.equal((svc as unknown as { views: Map<string, unknown> }).views.size, 8);
});
