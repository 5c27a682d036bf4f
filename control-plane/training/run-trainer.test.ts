import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTrainer } from './run-trainer.ts';
import type { TrainerLine } from '../../shared/training.ts';

const recipe = {
  id: 'x86-64-vnni',
  format: 'qdq',
  opset: 13,
  activations: { dtype: 'uint8', symmetric: false, granularity: 'per-tensor' },
  weights: { dtype: 'int8', symmetric: true, granularity: 'per-channel', axis: 0 },
};

function spec(outputDir: string, dataset: unknown, teacherEpochs = 1): unknown {
  return {
    jobId: 'run-trainer-test',
    outputDir,
    device: 'cpu',
    seed: 1,
    threads: 1,
    dataset,
    limits: { trainSamples: 400, testSamples: 100 },
    teacher: { kind: 'zoo', arch: 'resnet-teacher', width: 0.25, epochs: teacherEpochs },
    student: { kind: 'zoo', arch: 'compact-cnn', width: 0.5 },
    training: { batchSize: 32, lr: 0.05 },
    distill: { temperature: 4, alpha: 0.7, epochs: 1 },
    qat: { epochs: 1, freezeObserversAfterEpochs: 1, freezeBnAfterEpochs: 0.5 },
    recipes: [recipe],
    evalSetSize: 50,
  };
}

test('a bad dataset path gives ok=false with the error line message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-rt-'));
  try {
    const lines: TrainerLine[] = [];
    const r = await runTrainer({ spec: spec(dir, { kind: 'npz', path: join(dir, 'missing.npz') }), onLine: (l) => lines.push(l) });
    assert.equal(r.ok, false);
    assert.notEqual(r.exitCode, 0);
    assert.equal(r.error?.code, 'bad-dataset');
    assert.match(r.error?.message ?? '', /dataset\.path: .*missing\.npz: no such file or folder/);
    assert.ok(lines.some((l) => l.type === 'error'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an invalid spec is reported as bad-spec', async () => {
  const r = await runTrainer({ spec: { jobId: 'x', outputDir: '/tmp/x' } });
  assert.equal(r.ok, false);
  assert.equal(r.error?.code, 'bad-spec');
});

test('invalid stdout lines are reported, not fatal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-rt-'));
  try {
    const fake = join(dir, 'fake.py');
    writeFileSync(
      fake,
      [
        'import json, sys',
        'sys.stdin.read()',
        'print("hello, not json")',
        'print(json.dumps({"type": "progress", "phase": "nope"}))',
        'print(json.dumps({"type": "log", "level": "info", "message": "ok"}))',
        'print(json.dumps({"type": "error", "code": "internal", "message": "boom"}))',
        'sys.exit(1)',
      ].join('\n'),
    );
    const invalid: string[] = [];
    const lines: TrainerLine[] = [];
    const r = await runTrainer({ spec: {}, trainerScript: fake, onInvalidLine: (i) => invalid.push(i.line), onLine: (l) => lines.push(l) });
    assert.equal(invalid.length, 2);
    assert.equal(r.invalidLines, 2);
    assert.deepEqual(lines.map((l) => l.type), ['log', 'error']);
    assert.equal(r.ok, false);
    assert.equal(r.error?.message, 'boom');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cancel kills the child and reports cancelled', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-rt-'));
  try {
    const ac = new AbortController();
    let pid: number | undefined;
    const started = Date.now();
    const r = await runTrainer({
      spec: spec(dir, { kind: 'fashion-mnist' }, 50),
      signal: ac.signal,
      killGraceMs: 2000,
      onSpawn: (p) => {
        pid = p;
      },
      onLine: (l) => {
        // abort once the trainer is in its first training phase
        if (l.type === 'progress' || (l.type === 'log' && l.message.startsWith('teacher'))) ac.abort();
      },
    });
    assert.equal(r.ok, false);
    assert.equal(r.cancelled, true);
    assert.equal(r.error?.code, 'cancelled');
    assert.ok(r.exitCode !== 0, 'child must not exit cleanly');
    assert.ok(Date.now() - started < 60_000);
    assert.ok(pid !== undefined);
    assert.throws(() => process.kill(pid!, 0), /ESRCH/, 'the child process is gone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing interpreter is a spawn failure, not a crash', async () => {
  const r = await runTrainer({ spec: {}, python: '/nonexistent/python3' });
  assert.equal(r.ok, false);
  assert.equal(r.error?.code, 'spawn-failed');
});
