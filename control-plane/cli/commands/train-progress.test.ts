import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrainingJobCreateSchema } from '../../../shared/registry.ts';
import { progressLine } from './train.ts';
import { DEMO_JOB, DEMO_SIZES } from './demo.ts';

test('the progress line shows the phase eta and the whole-job eta', () => {
  const base = { phase: 'teacher' as const, epoch: 1, epochs: 2, step: 10, totalSteps: 92, loss: 1.5, accuracy: null, etaSeconds: 41 };
  assert.match(progressLine({ ...base, jobEtaSeconds: 145 }), /eta 41s job eta 2m25s$/);
  assert.match(progressLine(base), /eta 41s job eta -$/, 'a trainer without the field: a dash, not a made-up number');
});

test('the demo job: small is the default, runs every phase on fewer samples; both sizes are valid job requests', () => {
  const small = TrainingJobCreateSchema.parse(DEMO_JOB('x86-64-vnni'));
  const full = TrainingJobCreateSchema.parse(DEMO_JOB('x86-64-vnni', 'full'));
  assert.deepEqual(small.profiles, ['x86-64-vnni'], 'only the local agent profile recipe');
  assert.equal(small.hyperparameters.limits?.trainSamples, DEMO_SIZES.small.trainSamples);
  assert.ok(DEMO_SIZES.small.trainSamples < DEMO_SIZES.full.trainSamples);
  for (const j of [small, full]) {
    assert.ok(j.teacher.kind === 'zoo' && (j.teacher.epochs ?? 0) >= 1, 'a teacher is trained');
    assert.ok((j.hyperparameters.distill?.epochs ?? 0) >= 1 && (j.hyperparameters.qat?.epochs ?? 0) >= 1, 'distillation and QAT run');
  }
  assert.equal(full.hyperparameters.limits?.trainSamples, 8000);
});
