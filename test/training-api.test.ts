import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistryExtension } from '../control-plane/registry/index.ts';
import { createTrainingExtension } from '../control-plane/training/index.ts';
import { signedModelPayload, type ModelVersion, type TrainingJobView } from '../shared/registry.ts';
import { verifyPayload } from '../shared/signing.ts';
import { DeliverySourceSchema } from '../shared/transfer.ts';
import { startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { sha256Hex } from '../shared/hash.ts';

/** Training jobs through the HTTP API with the real trainer on tiny configs, into the registry. */

/** A grey PNG, written by hand (no image library in the Node dependencies). */
function grayPng(w: number, h: number, px: (x: number, y: number) => number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer): number => {
    let c = 0xffffffff;
    for (const v of b) c = crcTable[(c ^ v) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const raw = Buffer.alloc((w + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = px(x, y);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

let fleet: TestFleet;
let dataDir = '';
let scratch = '';

const tinyJob = (over: Record<string, unknown> = {}, teacherEpochs = 1): Record<string, unknown> => ({
  name: 'tiny',
  teacher: { kind: 'zoo', arch: 'resnet-teacher', width: 0.25, depth: 1, epochs: teacherEpochs },
  student: { kind: 'zoo', arch: 'compact-cnn', width: 0.5 },
  dataset: { kind: 'fashion-mnist' },
  profiles: ['x86-64-vnni', 'armv82-dotprod'],
  hyperparameters: {
    device: 'cpu',
    seed: 1,
    threads: 1,
    limits: { trainSamples: 300, testSamples: 100 },
    evalSetSize: 50,
    training: { batchSize: 32, lr: 0.05 },
    distill: { epochs: 1 },
    qat: { epochs: 1, freezeObserversAfterEpochs: 1, freezeBnAfterEpochs: 0.5 },
    ptq: { enabled: true, calibrationBatches: 2 },
  },
  ...over,
});

/** Long enough to be caught running: many teacher epochs. */
const slowJob = (): Record<string, unknown> => tinyJob({ name: 'slow' }, 200);

const getJob = async (id: string): Promise<TrainingJobView> => (await fleet.api(`/training-jobs/${id}`)).body as TrainingJobView;

async function submit(body: Record<string, unknown>): Promise<TrainingJobView> {
  const r = await fleet.api('/training-jobs', { method: 'POST', json: body });
  assert.equal(r.status, 201, r.text);
  return r.body as TrainingJobView;
}

async function waitState(id: string, states: string[], timeoutMs = 120_000): Promise<TrainingJobView> {
  return waitFor(`job ${id} in ${states.join('|')}`, async () => {
    const j = await getJob(id);
    return states.includes(j.state) ? j : null;
  }, timeoutMs, 200);
}

/** Running, with its trainer in a training phase (so a cancel meets a live child). */
async function waitTraining(id: string): Promise<TrainingJobView> {
  return waitFor(`job ${id} training`, async () => {
    const j = await getJob(id);
    assert.ok(!['succeeded', 'failed', 'cancelled', 'interrupted'].includes(j.state), `job ended early: ${JSON.stringify(j.error)}`);
    return j.state === 'running' && j.trainerPid !== null && j.progress !== null ? j : null;
  }, 120_000, 100);
}

const processGone = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
};

let registryExt: ReturnType<typeof createRegistryExtension>;
const extensions = () => {
  const registry = createRegistryExtension({ dataDir });
  registryExt = registry;
  const training = createTrainingExtension({ dataDir, registry: registry.registry, progressPersistMs: 200, killGraceMs: 3000 });
  return [registry, training];
};

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'ef-train-api-'));
  scratch = mkdtempSync(join(tmpdir(), 'ef-train-scratch-'));
  fleet = await startTestFleet('embedded', { dataDir, extensions: extensions() });
});

after(async () => {
  await fleet?.stop();
  for (const d of [dataDir, scratch]) if (d) rmSync(d, { recursive: true, force: true });
});

test('bad job requests are refused with 400 naming the field, and queue nothing', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [tinyJob({ profiles: ['x86-64-vnni', 'no-such-profile'] }), /profiles\.1: unknown profile "no-such-profile" \(known: .*x86-64-vnni/],
    [tinyJob({ dataset: { kind: 'parquet', path: '/data/x.parquet' } }), /dataset\.kind:/],
    [tinyJob({ dataset: { kind: 'csv', path: '/no/such/x.csv' } }), /dataset\.path: \/no\/such\/x\.csv: no such file or folder/],
    [tinyJob({ dataset: { kind: 'npz', path: 'relative/data.npz' } }), /dataset\.path: "relative\/data\.npz" must be an absolute path/],
    [tinyJob({ dataset: { kind: 'npz' } }), /dataset\.path:/],
    [tinyJob({ hyperparameters: { distill: { epochs: -1 } } }), /hyperparameters\.distill\.epochs: Too small/],
    [tinyJob({ hyperparameters: { training: { batchSize: 0 } } }), /hyperparameters\.training\.batchSize/],
    [tinyJob({ hyperparameters: { qat: { epochs: 1, bogus: 1 } } }), /hyperparameters\.qat/],
    [tinyJob({ teacher: { kind: 'zoo', arch: 'vgg' } }), /teacher\.arch/],
    [tinyJob({ profiles: undefined }), /profiles: give profiles \(device-profile ids\) or recipes/],
    [tinyJob({ name: 'Has Spaces' }), /name:/],
    [
      tinyJob({ profiles: ['x86-64-vnni'], recipes: [{ id: 'x86-64-vnni', format: 'qdq', opset: 13, activations: { dtype: 'int8', symmetric: true, granularity: 'per-tensor' }, weights: { dtype: 'int8', symmetric: true, granularity: 'per-channel' } }] }),
      /recipes\.0: recipe id "x86-64-vnni" is given twice with different settings/,
    ],
  ];
  for (const [body, re] of cases) {
    const r = await fleet.api('/training-jobs', { method: 'POST', json: body });
    assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.text}`);
    assert.match(r.body.message, re);
  }
  assert.equal((await fleet.api('/training-jobs', { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } })).status, 400);
  assert.equal((await fleet.api('/training-jobs?state=bogus')).status, 400);
  assert.equal((await fleet.api('/training-jobs')).body.total, 0);
  assert.equal((await fleet.api('/training-jobs/nope')).status, 404);
  assert.equal((await fleet.api('/training-jobs/nope/cancel', { method: 'POST' })).status, 404);
  const openapi = (await fleet.api('/openapi.json', { auth: null })).body;
  assert.ok(openapi.paths['/training-jobs'].post.requestBody, 'the job body schema is in the OpenAPI document');
});

test('the dataset is checked at submit: a 400 names the field and says which kind the data really is', async () => {
  const tree = join(scratch, 'shapes');
  const csv = join(scratch, 'pixels.csv');
  mkdirSync(join(tree, 'a'), { recursive: true });
  writeFileSync(csv, `label,${Array.from({ length: 64 }, (_, i) => `p${i}`).join(',')}\n` + `cat,${Array(64).fill(3).join(',')}\n`.repeat(4));
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ kind: 'npz', path: tree }, /^bad body: dataset\.path: .*shapes is not a NPZ dataset: it is a folder; for class sub-folders of PNG\/JPEG images use \{"kind": "imagefolder"\}/],
    [{ kind: 'npz', path: csv }, /dataset\.path: .*pixels\.csv is not a NPZ dataset: it is a text file; for a CSV use \{"kind": "csv"\}/],
    [{ kind: 'imagefolder', path: tree }, /dataset\.path: .*shapes: class folder\(s\) \['a'\] hold no \.png/],
    [{ kind: 'csv', path: csv, labelColumn: 'y' }, /dataset\.path: .*no label column 'y' in the header/],
    [{ kind: 'idx', trainImages: csv, trainLabels: csv, testImages: csv, testLabels: csv }, /dataset\.trainImages: .*it is a text file/],
  ];
  for (const [dataset, re] of cases) {
    const r = await fleet.api('/training-jobs', { method: 'POST', json: tinyJob({ dataset }) });
    assert.equal(r.status, 400, `${JSON.stringify(dataset)} → ${r.text}`);
    assert.match(r.body.message, re);
    assert.equal(r.body.details[0].path[0], 'dataset');
  }
  assert.equal((await fleet.api('/training-jobs')).body.total, 0, 'nothing was queued');
});

test("a user's ImageFolder with named classes trains end to end; the summary comes back at submit and the names stay with the models", async () => {
  const tree = join(scratch, 'shapes-ok');
  const names = ['circle', 'square', 'triangle'];
  for (const [ci, n] of names.entries()) {
    mkdirSync(join(tree, n), { recursive: true });
    for (let i = 0; i < 24; i++) writeFileSync(join(tree, n, `${i}.png`), grayPng(16, 16, (x, y) => (((x + y + i) % 3 === ci ? 200 : 20) + i) & 255));
  }
  const r = await fleet.api('/training-jobs', {
    method: 'POST',
    json: tinyJob({ name: 'shapes', dataset: { kind: 'imagefolder', path: tree }, profiles: ['generic-cpu'] }),
  });
  assert.equal(r.status, 201, r.text);
  const summary = r.body.datasetSummary;
  assert.deepEqual(summary.classNames, names);
  assert.deepEqual(summary.inputShape, [1, 16, 16]);
  assert.equal(summary.trainSamples, 72);
  assert.equal(summary.testSource, 'holdout');
  const done = await waitState(r.body.id, ['succeeded', 'failed'], 240_000);
  assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
  const models = (await fleet.api('/models?job=' + r.body.id)).body.items as ModelVersion[];
  assert.ok(models.length >= 2);
  for (const m of models) assert.deepEqual(m.lineage.classNames, names, m.id);
  assert.ok(done.logTail.some((l) => /augmentation: none/.test(l.message)), 'a user dataset gets no augmentation unless asked');
});

test('a job runs the real trainer end to end into registered, signed model versions', async () => {
  const queued = await submit(tinyJob());
  assert.equal(queued.state, 'queued');
  assert.deepEqual(queued.profiles.sort(), ['armv82-dotprod', 'x86-64-vnni']);
  assert.equal(queued.outputDir, join(dataDir, 'artifacts', 'jobs', queued.id));

  const job = await waitState(queued.id, ['succeeded', 'failed']);
  assert.equal(job.state, 'succeeded', JSON.stringify({ error: job.error, log: job.logTail.slice(-5) }));
  assert.equal(job.trainerPid, null);
  assert.ok(job.progress, 'progress persisted');
  assert.ok(job.progress.phasesDone.includes('teacher') && job.progress.phasesDone.includes('distill'), JSON.stringify(job.progress));
  assert.ok(job.progress.totalSteps > 0);
  // the whole-job estimate: the last line is the last recipe's QAT epoch end, so all planned steps are done
  assert.equal(job.progress.jobProgress, 1, JSON.stringify(job.progress));
  assert.equal(job.progress.jobEtaSeconds, 0, JSON.stringify(job.progress));
  // every finished epoch (accuracy at its end) is a point of the job page's loss/accuracy charts
  assert.ok(job.progress.epochHistory.length >= 2 && job.progress.epochHistory.every((e) => e.accuracy >= 0 && e.accuracy <= 1), JSON.stringify(job.progress.epochHistory));
  assert.ok(['teacher', 'distill'].every((p) => job.progress!.epochHistory.some((e) => e.phase === p)), 'teacher and distill epochs');
  assert.ok(job.logTail.some((l) => /^artifact student-int8-qat \(x86-64-vnni\)/.test(l.message)), 'log tail holds the trainer lines');
  assert.ok(job.logTail.length <= 50);
  const metrics = job.metrics as { teacherFp32: number; studentFp32: number; recipes: Record<string, { qatInt8: number }> };
  assert.equal(typeof metrics.teacherFp32, 'number');
  assert.equal(typeof metrics.recipes['x86-64-vnni']?.qatInt8, 'number');
  // every phase that ended is in the training-phase histogram (prom-client), the teacher and distillation among them
  const prom = (await fleet.api('/metrics')).text;
  for (const phase of ['teacher', 'distill', 'qat']) assert.match(prom, new RegExp(`^edgefleet_training_phase_duration_seconds_count\\{phase="${phase}"\\} [1-9]\\d*$`, 'm'), phase);

  // one int8 (QAT) version per requested profile recipe, PTQ comparisons, fp32 student and teacher baselines
  const ids = job.models.map((m) => m.id).sort();
  assert.deepEqual(ids, ['tiny-armv82-dotprod', 'tiny-armv82-dotprod-ptq', 'tiny-fp32', 'tiny-teacher-fp32', 'tiny-x86-64-vnni', 'tiny-x86-64-vnni-ptq']);

  const list = await fleet.api(`/models?job=${job.id}`);
  assert.equal(list.status, 200);
  assert.equal(list.body.total, 6);
  const models = list.body.items as ModelVersion[];
  const key = (await fleet.api('/keys/model-signing')).body.publicKeyPem as string;
  const fp32 = models.find((m) => m.id === 'tiny-fp32')!;
  assert.equal(fp32.kind, 'fp32');
  assert.equal(fp32.role, 'student-fp32');
  assert.equal(fp32.profileId, null);
  for (const m of models) {
    assert.match(m.sha256, /^[0-9a-f]{64}$/);
    assert.ok(m.size > 0);
    assert.equal(m.version, 1);
    assert.equal(m.lineage.jobId, job.id);
    assert.equal(typeof m.lineage.versions?.torch, 'string');
    assert.ok(verifyPayload(signedModelPayload(m), m.signature, key), `${m.id} signature verifies with the control plane's key`);
    assert.equal(m.metrics.teacherFp32, metrics.teacherFp32);
    assert.ok(m.companions.some((c) => c.role === 'evalset'));
    // run in onnxruntime on this host before registration: PyTorch's and the runtime's numbers side by side
    const rt = m.metrics.runtime;
    assert.ok(rt, `${m.id} was runtime-checked`);
    assert.equal(rt.evaluated, 50, `${m.id}: ${rt.reason}`);
    assert.equal(typeof rt.accuracy, 'number');
    assert.equal(typeof rt.agreement, 'number');
    assert.equal(rt.flagged, rt.agreement! < rt.threshold);
    if (m.kind === 'fp32') assert.ok(rt.agreement! >= 0.98, `${m.id}: fp32 agrees with PyTorch (${rt.agreement})`);
  }
  const x86 = models.find((m) => m.id === 'tiny-x86-64-vnni')!;
  assert.equal(x86.kind, 'int8');
  assert.equal(x86.role, 'student-int8-qat');
  assert.equal(x86.profileId, 'x86-64-vnni');
  assert.equal(x86.recipeId, 'x86-64-vnni');
  assert.equal(x86.metrics.studentInt8, metrics.recipes['x86-64-vnni']!.qatInt8);
  assert.equal(typeof x86.metrics.accuracy, 'number');
  assert.ok(Array.isArray((x86.diagnostics as { layers: unknown[] }).layers), 'per-layer quantization diagnostics');
  assert.deepEqual(x86.lineage.parents, [{ id: 'tiny-fp32', version: 1, role: 'student-fp32' }]);
  const baseline = x86.companions.find((c) => c.role === 'fp32-baseline');
  assert.deepEqual([baseline?.modelId, baseline?.version, baseline?.path], ['tiny-fp32', 1, fp32.filePath]);
  assert.equal(x86.companions.find((c) => c.role === 'reference-predictions')?.size, 50);
  assert.ok(x86.size < fp32.size, 'the int8 file is smaller than fp32');

  // the download is the trainer's file, byte for byte, with its sha256
  const res = await fetch(`${fleet.cp.httpUrl}/models/tiny-x86-64-vnni/versions/1/artifact`, { headers: { authorization: `Bearer ${fleet.token}` } });
  assert.equal(res.status, 200);
  const bytes = Buffer.from(await res.arrayBuffer());
  assert.deepEqual(bytes, readFileSync(join(job.outputDir, 'student-int8-qat-x86-64-vnni.onnx')));
  assert.equal(res.headers.get('x-edgefleet-sha256'), x86.sha256);
  assert.equal(sha256Hex(bytes), x86.sha256);
  assert.equal((await fleet.api('/models/tiny-x86-64-vnni/versions/1/verify')).body.ok, true);
  const source = DeliverySourceSchema.parse(await registryExt.registry.deliverySource('tiny-x86-64-vnni', 1));
  assert.deepEqual([source.profileId, source.recipeId, source.modelPath], ['x86-64-vnni', 'x86-64-vnni', x86.filePath]);
  assert.equal(registryExt.registry.latestFor('armv82-dotprod')?.id, 'tiny-armv82-dotprod', 'QAT, not PTQ, is what a profile gets');

  // tampering with the stored file is detected and the file is not served
  const tampered = readFileSync(x86.filePath);
  tampered[tampered.length - 1] ^= 0xff;
  writeFileSync(x86.filePath, tampered);
  const v = await fleet.api('/models/tiny-x86-64-vnni/versions/1/verify');
  assert.equal(v.body.ok, false);
  assert.match(v.body.problems.join('\n'), /model file changed on disk/);
  assert.equal((await fleet.api('/models/tiny-x86-64-vnni/versions/1/artifact')).status, 409);

  const succeeded = (await fleet.api('/training-jobs?state=succeeded')).body.items as TrainingJobView[];
  assert.deepEqual(succeeded.filter((j) => j.name === 'tiny').map((j) => j.id), [job.id]);
  assert.equal((await fleet.api(`/training-jobs/${job.id}/cancel`, { method: 'POST' })).status, 409, 'an ended job cannot be cancelled');
});

test("a trainer crash marks the job failed with the trainer's message", async () => {
  // the submit-time check reads a sample of each class; the trainer reads every image and meets the broken one
  const tree = join(scratch, 'crash-tree');
  for (const n of ['a', 'b']) {
    mkdirSync(join(tree, n), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(tree, n, `${String(i).padStart(2, '0')}.png`), grayPng(12, 12, (x) => (n === 'a' ? x * 9 : 255 - x * 9)));
  }
  writeFileSync(join(tree, 'b', '19.png'), 'not a png');
  const broken = await submit(tinyJob({ name: 'crash', dataset: { kind: 'imagefolder', path: tree } }));
  const j = await waitState(broken.id, ['succeeded', 'failed']);
  assert.equal(j.state, 'failed');
  assert.equal(j.error?.code, 'bad-dataset');
  assert.match(j.error?.message ?? '', /b\/19\.png: not a readable PNG\/JPEG image/);
  assert.ok(j.logTail.some((l) => l.level === 'error' && /19\.png/.test(l.message)));
  assert.equal(j.models.length, 0);

  // a file that is not an npz archive at all never reaches the trainer
  writeFileSync(join(scratch, 'garbage.npz'), 'not a zip');
  const garbage = await fleet.api('/training-jobs', { method: 'POST', json: tinyJob({ name: 'crash', dataset: { kind: 'npz', path: join(scratch, 'garbage.npz') } }) });
  assert.equal(garbage.status, 400);
  assert.match(garbage.body.message, /garbage\.npz is not a NPZ dataset: it is a text file/);
  assert.equal((await fleet.api('/models?name=crash')).body.total, 0);
});

test('cancel: a queued job at once, a running one by stopping its trainer', async () => {
  const running = await submit(slowJob());
  const waiting = await submit(slowJob());
  const live = await waitTraining(running.id);
  const pid = live.trainerPid!;
  assert.equal((await getJob(waiting.id)).state, 'queued', 'one job at a time by default');

  // progress reaches SQLite while the job runs (throttled), not only memory
  let teacherProgress: { jobEtaSeconds?: number | null; jobProgress?: number | null; etaSeconds: number | null } | null = null;
  await waitFor('persisted progress', () => {
    const row = fleet.cp.ctx.db.prepare('SELECT progress FROM training_jobs WHERE id = ?').get(running.id) as { progress: string | null };
    const p = row.progress === null ? null : (JSON.parse(row.progress) as { phase: string; jobEtaSeconds?: number | null; jobProgress?: number | null; etaSeconds: number | null });
    if (p?.phase === 'teacher') teacherProgress = p;
    return p?.phase === 'teacher';
  });
  // mid-teacher, the whole job has more left than the teacher phase (distill and QAT are still ahead)
  const tp = teacherProgress as { jobEtaSeconds?: number | null; jobProgress?: number | null; etaSeconds: number | null } | null;
  assert.ok(tp && typeof tp.jobEtaSeconds === 'number' && typeof tp.etaSeconds === 'number' && tp.jobEtaSeconds > tp.etaSeconds, JSON.stringify(tp));
  assert.ok(typeof tp.jobProgress === 'number' && tp.jobProgress > 0 && tp.jobProgress < 0.5, JSON.stringify(tp));

  const c1 = await fleet.api(`/training-jobs/${waiting.id}/cancel`, { method: 'POST' });
  assert.equal(c1.status, 200);
  assert.equal(c1.body.state, 'cancelled');
  assert.equal(c1.body.startedAt, null);

  const c2 = await fleet.api(`/training-jobs/${running.id}/cancel`, { method: 'POST' });
  assert.equal(c2.status, 200);
  assert.equal(c2.body.state, 'cancelled');
  assert.equal(c2.body.error.code, 'cancelled');
  assert.ok(processGone(pid), 'the trainer process is gone');
  assert.equal((await fleet.api(`/models?name=slow`)).body.total, 0);
  assert.equal((await fleet.api('/training-jobs?state=cancelled')).body.total, 2);
});

test('a control-plane restart marks the running job interrupted; queued jobs stay queued and run', async () => {
  const running = await submit(slowJob());
  const waiting = await submit(slowJob());
  const pid = (await waitTraining(running.id)).trainerPid!;

  await fleet.restartControlPlane();
  assert.ok(processGone(pid), 'the trainer was stopped with the control plane');
  const j = await getJob(running.id);
  assert.equal(j.state, 'interrupted');
  assert.match(j.error?.message ?? '', /control plane stopped/);
  assert.ok(j.progress, 'the last progress survives');

  // the queued job was kept and starts after the restart
  await waitTraining(waiting.id);
  assert.equal((await fleet.api(`/training-jobs/${waiting.id}/cancel`, { method: 'POST' })).body.state, 'cancelled');

  const again = await fleet.api(`/training-jobs/${running.id}/retry`, { method: 'POST' });
  assert.equal(again.status, 201);
  assert.notEqual(again.body.id, running.id);
  assert.equal((await fleet.api(`/training-jobs/${again.body.id}/cancel`, { method: 'POST' })).body.state, 'cancelled');
});
