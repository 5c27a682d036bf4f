import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProfilesFromDir } from '../../device-profiles/load.ts';
import type { DeviceProfile } from '../../shared/profile.ts';
import { TrainingJobCreateSchema, type TrainingJobView } from '../../shared/registry.ts';
import type { ProgressLine, ResultLine } from '../../shared/training.ts';
import { silentLogger } from '../log.ts';
import { migrateRoom, openDatabase, type Db } from '../store/db.ts';
import { buildTrainerSpec } from './jobs-spec.ts';
import { TRAINING_MIGRATIONS, TrainingJobStore } from './jobs-store.ts';
import { EPOCH_HISTORY_MAX, TrainingQueue, type TrainingQueueOptions } from './jobs.ts';
import type { RunTrainerOptions, RunTrainerResult } from './run-trainer.ts';

/** The queue and the spec builder over an in-memory database and a fake trainer. */

const loaded = loadProfilesFromDir();
assert.ok(loaded.ok);
const profiles: readonly DeviceProfile[] = loaded.value;

const request = (over: Record<string, unknown> = {}) =>
  TrainingJobCreateSchema.parse({
    teacher: { kind: 'zoo' },
    student: { kind: 'zoo' },
    dataset: { kind: 'fashion-mnist' },
    profiles: ['x86-64-vnni'],
    ...over,
  });

const result: ResultLine = {
  type: 'result',
  metrics: { teacherFp32: 0.9, studentFp32: 0.85, recipes: {} },
  diagnostics: {},
  warnings: [],
  versions: { torch: '1.13.1', python: '3.11', onnx: '1.14', trainer: '0.1.0' },
  durations: {},
  artifacts: [],
};
const ok = (): RunTrainerResult => ({ ok: true, exitCode: 0, exitSignal: null, cancelled: false, result, artifacts: [], invalidLines: 0 });
const progress = (phase: ProgressLine['phase'], step: number, accuracy: number | null): ProgressLine => ({
  type: 'progress',
  phase,
  epoch: 1,
  epochs: 1,
  step,
  totalSteps: 100,
  loss: 1,
  accuracy,
  lr: 0.1,
  etaSeconds: 1,
});

type Harness = { db: Db; store: TrainingJobStore; queue: TrainingQueue; dir: string; close: () => Promise<void> };

function harness(run: NonNullable<TrainingQueueOptions['run']>, over: Partial<TrainingQueueOptions> = {}, db: Db = openDatabase(':memory:')): Harness {
  migrateRoom(db, 'training', TRAINING_MIGRATIONS);
  const dir = mkdtempSync(join(tmpdir(), 'ef-jobs-'));
  const store = new TrainingJobStore(db);
  const queue = new TrainingQueue({ store, dataDir: dir, profiles: () => profiles, log: silentLogger, now: Date.now, run, ...over });
  return {
    db,
    store,
    queue,
    dir,
    close: async () => {
      await queue.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const submit = (q: TrainingQueue, over: Record<string, unknown> = {}): TrainingJobView => {
  const r = q.submit(request(over));
  assert.ok(r.ok, JSON.stringify(r));
  return r.value;
};

/** Waits for a condition (the event a test needs), with a bound generous enough for a loaded CI machine. */
async function until<T>(fn: () => T | null | undefined | false, what: string): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('the spec builder: profiles bring recipes, explicit recipes join them once, errors name the field', () => {
  const x86 = profiles.find((p) => p.id === 'x86-64-vnni')!;
  const built = buildTrainerSpec(request({ profiles: ['x86-64-vnni', 'jetson-trt-int8'], recipes: [x86.recipe] }), profiles, 'j1', '/out/j1');
  assert.ok(built.ok);
  assert.deepEqual(built.value.spec.recipes.map((r) => r.id), ['x86-64-vnni', 'jetson-trt-int8']);
  assert.deepEqual(built.value.profileMap, { 'x86-64-vnni': 'x86-64-vnni', 'jetson-trt-int8': 'jetson-trt-int8' });
  assert.equal(built.value.spec.outputDir, '/out/j1');
  assert.equal(built.value.spec.training.batchSize, 128, 'trainer defaults applied');

  const custom = { ...x86.recipe, id: 'my-recipe' };
  const own = buildTrainerSpec(request({ profiles: undefined, recipes: [custom] }), profiles, 'j2', '/out/j2');
  assert.ok(own.ok);
  assert.deepEqual(own.value.profileMap, { 'my-recipe': null }, 'a recipe no profile owns goes to no profile');

  const unknown = buildTrainerSpec(request({ profiles: ['nope'] }), profiles, 'j3', '/o');
  assert.deepEqual(unknown.ok ? null : unknown.error.field, 'profiles.0');
});

test('a job left running by a crashed control plane is interrupted at start; queued ones run', async () => {
  const db = openDatabase(':memory:');
  const first = harness(async () => new Promise<RunTrainerResult>(() => {}), {}, db);
  const a = submit(first.queue);
  const b = submit(first.queue);
  // "crash": claim a by hand, as the dead process had, and never stop that queue
  first.store.claimNext(Date.now());
  first.store.setPid(a.id, 999_999, Date.now());

  const runs: string[] = [];
  const second = harness(async (o) => (runs.push((o.spec as { jobId: string }).jobId), ok()), {}, db);
  second.queue.start();
  assert.equal(second.store.get(a.id)?.state, 'interrupted');
  assert.match(second.store.get(a.id)?.error?.message ?? '', /control plane stopped/);
  await until(() => second.store.get(b.id)?.state === 'succeeded', 'b succeeds');
  assert.deepEqual(runs, [b.id]);
  await second.close();
  rmSync(first.dir, { recursive: true, force: true });
});

test('at most `concurrency` trainers run at once, in submission order', async () => {
  let active = 0;
  let peak = 0;
  const order: string[] = [];
  const release: (() => void)[] = [];
  const h = harness(
    async (o) => {
      order.push((o.spec as { jobId: string }).jobId);
      active++;
      peak = Math.max(peak, active);
      await new Promise<void>((r) => release.push(r));
      active--;
      return ok();
    },
    { concurrency: 2 },
  );
  h.queue.start();
  const jobs = [submit(h.queue), submit(h.queue), submit(h.queue)];
  await until(() => release.length === 2, 'two running');
  assert.equal(h.store.get(jobs[2]!.id)?.state, 'queued');
  release.shift()!();
  await until(() => release.length === 2 && order.length === 3, 'the third starts');
  release.splice(0).forEach((r) => r());
  await until(() => jobs.every((j) => h.store.get(j.id)?.state === 'succeeded'), 'all succeed');
  assert.equal(peak, 2);
  // the first two are claimed in order but start concurrently (their trainers may be spawned either way round);
  // the third waits for a free slot: what "submission order" can promise
  assert.deepEqual([...order.slice(0, 2)].sort(), [jobs[0]!.id, jobs[1]!.id].sort());
  assert.equal(order[2], jobs[2]!.id);
  const started = jobs.map((j) => h.store.get(j.id)!.startedAt!);
  assert.ok(started[0]! <= started[1]! && started[1]! <= started[2]!, `claimed in submission order: ${started.join(', ')}`);
  await h.close();
});

test('progress is folded (accuracy carried within a phase) and written through throttled', async () => {
  let saves = 0;
  const h = harness(async (o: RunTrainerOptions) => {
    o.onLine?.(progress('teacher', 1, null));
    o.onLine?.(progress('teacher', 2, 0.5));
    for (let i = 3; i < 200; i++) o.onLine?.(progress('teacher', i, null));
    o.onLine?.(progress('distill', 1, null));
    o.onLine?.({ type: 'log', level: 'info', message: 'hello' });
    o.onStderr?.('warn: a\nwarn: b\npartial');
    return ok();
  }, { progressPersistMs: 60_000 });
  const real = h.store.saveLive.bind(h.store);
  h.store.saveLive = (...args) => (saves++, real(...args));
  h.queue.start();
  const j = submit(h.queue);
  await until(() => h.store.get(j.id)?.state === 'succeeded', 'job succeeds');
  assert.ok(saves <= 3, `persisted ${saves} times for 201 progress lines`);
  const row = h.store.get(j.id)!;
  assert.equal(row.progress?.phase, 'distill');
  assert.deepEqual(row.progress?.phasesDone, ['teacher']);
  assert.equal(row.progress?.accuracy, null, 'a new phase starts without accuracy');
  assert.deepEqual(row.logTail.filter((l) => l.level === 'stderr').map((l) => l.message), ['warn: a', 'warn: b', 'partial']);
  assert.ok(row.logTail.some((l) => l.message === 'hello'));
  await h.close();

  const h2 = harness(async (o: RunTrainerOptions) => {
    o.onLine?.(progress('teacher', 1, 0.5));
    o.onLine?.(progress('teacher', 2, null));
    return { ...ok(), ok: false, exitCode: 1, error: { code: 'internal', message: 'boom' } };
  });
  h2.queue.start();
  const j2 = submit(h2.queue);
  await until(() => h2.store.get(j2.id)?.state === 'failed', 'job fails');
  assert.equal(h2.store.get(j2.id)?.progress?.accuracy, 0.5, 'the epoch-end accuracy is kept for the phase');
  assert.deepEqual(h2.store.get(j2.id)?.error, { code: 'internal', message: 'boom' });
  await h2.close();
});

test('epoch-end lines become the per-epoch history behind the job charts, across phases, bounded', async () => {
  const h = harness(async (o: RunTrainerOptions) => {
    for (const phase of ['teacher', 'distill'] as const) {
      for (let epoch = 1; epoch <= 3; epoch++) {
        o.onLine?.({ ...progress(phase, epoch * 10 - 5, null), epoch, epochs: 3 });
        o.onLine?.({ ...progress(phase, epoch * 10, 0.5 + epoch / 10), epoch, epochs: 3, loss: 1 / epoch });
      }
    }
    for (let i = 0; i < EPOCH_HISTORY_MAX + 20; i++) o.onLine?.({ ...progress('qat', i, 0.9), recipeId: 'x86-u8s8', epoch: i });
    return ok();
  });
  h.queue.start();
  const j = submit(h.queue);
  await until(() => h.store.get(j.id)?.state === 'succeeded', 'job succeeds');
  const history = h.store.get(j.id)!.progress!.epochHistory;
  assert.equal(history.length, EPOCH_HISTORY_MAX, 'bounded');
  const view = h.queue.view(j.id)!.progress!.epochHistory;
  assert.deepEqual(view.at(-1), { ...view.at(-1)!, phase: 'qat', recipeId: 'x86-u8s8', epoch: EPOCH_HISTORY_MAX + 19 });
  await h.close();

  // the same lines without the flood: one point per epoch end, none for mid-epoch lines
  const h2 = harness(async (o: RunTrainerOptions) => {
    for (let epoch = 1; epoch <= 3; epoch++) {
      o.onLine?.({ ...progress('teacher', epoch * 10 - 5, null), epoch, epochs: 3 });
      o.onLine?.({ ...progress('teacher', epoch * 10, 0.5 + epoch / 10), epoch, epochs: 3, loss: 1 / epoch });
    }
    return ok();
  });
  h2.queue.start();
  const j2 = submit(h2.queue);
  await until(() => h2.store.get(j2.id)?.state === 'succeeded', 'job succeeds');
  assert.deepEqual(h2.store.get(j2.id)!.progress!.epochHistory.map((e) => [e.phase, e.epoch, e.loss, e.accuracy]), [['teacher', 1, 1, 0.6], ['teacher', 2, 0.5, 0.7], ['teacher', 3, 1 / 3, 0.8]]);
  await h2.close();
});

test('a registry that refuses the artifacts fails the job, saying so', async () => {
  const h = harness(async () => ok(), {
    registry: {
      registerJob: async () => {
        throw new Error('disk full');
      },
    },
  });
  h.queue.start();
  const j = submit(h.queue);
  await until(() => h.store.get(j.id)?.state === 'failed', 'job fails');
  const row = h.store.get(j.id)!;
  assert.equal(row.error?.code, 'registration-failed');
  assert.match(row.error?.message ?? '', /disk full/);
  assert.deepEqual((row.metrics as { teacherFp32: number }).teacherFp32, 0.9, 'the metrics are kept');
  await h.close();
});

test("the trainer's warnings and an error's field reach the job API view (GET /training-jobs/:id)", async () => {
  const warned: ResultLine = {
    ...result,
    metrics: { ...result.metrics, studentDistilledFp32: 0.872, studentHardFp32: 0.919, studentFp32: 0.919, studentChosen: 'hard-label' },
    warnings: [
      { code: 'distillation-worse-than-hard-labels', message: 'the distilled student is worse than the hard-label one: 87.2% vs 91.9%' },
      { code: 'ops-kept-float', message: 'recipe x86-64-vnni: 2 ops kept in float (SiLU x2)', recipeId: 'x86-64-vnni', ops: ['SiLU (act1)', 'SiLU (act2)'] },
    ],
  };
  let n = 0;
  const h = harness(async () =>
    ++n === 1
      ? { ok: true, exitCode: 0, exitSignal: null, cancelled: false, result: warned, artifacts: [], invalidLines: 0 }
      : { ok: false, exitCode: 2, exitSignal: null, cancelled: false, error: { code: 'bad-spec', message: 'teacher.path: the TorchScript teacher outputs 5 classes; the dataset has 10', field: 'teacher.path' }, artifacts: [], invalidLines: 0 },
  );
  h.queue.start();
  const a = submit(h.queue);
  const done = await until(() => (h.queue.view(a.id)?.state === 'succeeded' ? h.queue.view(a.id) : null), 'a succeeds');
  assert.deepEqual(done.warnings.map((w) => w.code), ['distillation-worse-than-hard-labels', 'ops-kept-float']);
  assert.deepEqual(done.warnings[1]!.ops, ['SiLU (act1)', 'SiLU (act2)']);
  assert.equal((done.metrics as ResultLine['metrics']).studentChosen, 'hard-label');
  const b = submit(h.queue);
  const failed = await until(() => (h.queue.view(b.id)?.state === 'failed' ? h.queue.view(b.id) : null), 'b fails');
  assert.deepEqual(failed.error, { code: 'bad-spec', message: 'teacher.path: the TorchScript teacher outputs 5 classes; the dataset has 10', field: 'teacher.path' });
  assert.deepEqual(failed.warnings, []);
  await h.close();
});
