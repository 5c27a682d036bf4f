/**
 * Training bench: full Fashion-MNIST on this CPU. Teacher fp32, student fp32 (hard labels),
 * student fp32 distilled, student int8 PTQ and distilled+QAT per recipe; top-1, size, batch-1 p50
 * and batch-64 throughput in onnxruntime-node (1 thread), training time; goals vs the teacher.
 *
 *   node --import tsx bench/training-bench.ts            # ~35 min on 2 cores
 *   BENCH_QUICK=1 node --import tsx bench/training-bench.ts   # smoke run, a minute
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpus } from 'node:os';
import { runTrainer } from '../control-plane/training/run-trainer.ts';
import { parseEvalSet } from '../shared/evalset.ts';
import { TrainingJobSpecSchema, type ArtifactLine, type TrainingJobSpecInput } from '../shared/training.ts';
import { evalAccuracy, latency, openSession, throughput } from './lib/ort-measure.ts';
import { BENCH_RECIPES } from './lib/recipes.ts';
import { fmtBytes, fmtMs, fmtSecs, formatTable } from './lib/table.ts';

const quick = process.env['BENCH_QUICK'] === '1';
const outDir = resolve(process.env['BENCH_OUT'] ?? `.edgefleet/bench/training${quick ? '-quick' : ''}`);
mkdirSync(outDir, { recursive: true });

const E = (full: number, small: number) => (quick ? small : full);
const spec: TrainingJobSpecInput = {
  jobId: `training-bench-${Date.now()}`,
  outputDir: outDir,
  device: 'auto',
  seed: 7,
  dataset: { kind: 'fashion-mnist' },
  ...(quick ? { limits: { trainSamples: 4000, testSamples: 1000 } } : {}),
  validationSplit: 0,
  teacher: { kind: 'zoo', arch: 'resnet-teacher', width: 1, depth: 1, epochs: E(10, 1) },
  student: { kind: 'zoo', arch: 'compact-cnn', width: 1 },
  training: { batchSize: 128, lr: 0.1, optimizer: 'sgd', weightDecay: 5e-4, augment: true, studentHardEpochs: E(5, 1) },
  distill: { temperature: 4, alpha: 0.7, epochs: E(8, 1) },
  qat: { epochs: 1, lr: 0.005, freezeBnAfterEpochs: 0.3, freezeObserversAfterEpochs: 0.6 },
  ptq: { enabled: true, calibrationBatches: 16 },
  recipes: BENCH_RECIPES,
  mixedPrecision: { enabled: true, maxAccuracyDrop: 0.01, maxFloatLayers: 2 },
  evalSetSize: 10000,
};

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function main(): Promise<void> {
  const parsed = TrainingJobSpecSchema.parse(spec);
  log(`training bench: output ${outDir}, ${cpus().length} CPUs${quick ? ' (QUICK)' : ''}`);
  const t0 = Date.now();
  const run = await runTrainer({
    spec: parsed,
    onLine: (l) => {
      if (l.type === 'progress' && l.accuracy !== null) {
        log(`${l.phase}${l.recipeId ? `[${l.recipeId}]` : ''} epoch ${l.epoch}/${l.epochs} loss ${l.loss?.toFixed(4)} acc ${(l.accuracy * 100).toFixed(2)}%`);
      } else if (l.type === 'log') log(l.message);
      else if (l.type === 'artifact') log(`artifact ${l.file} ${l.sizeBytes} B`);
    },
    onInvalidLine: (i) => log(`invalid trainer line: ${i.error}`),
    onStderr: (t) => process.stderr.write(t),
  });
  if (!run.ok || !run.result) throw new Error(`trainer failed: ${JSON.stringify(run.error)}`);
  const trainWall = (Date.now() - t0) / 1000;
  const res = run.result;
  const d = res.durations as { teacher?: number; studentHard?: number; distill?: number; recipes?: Record<string, { ptq?: number; qat?: number }> };

  const evalSet = parseEvalSet(readFileSync(join(outDir, 'evalset.bin')));
  if (!evalSet.ok) throw new Error(evalSet.error);
  const es = evalSet.value;
  const shape1 = [1, es.channels, es.height, es.width];
  const shape64 = [64, es.channels, es.height, es.width];

  type Row = { name: string; a: ArtifactLine; train?: number };
  const rows: Row[] = [];
  const find = (kind: ArtifactLine['kind'], recipeId?: string) => run.artifacts.find((a) => a.kind === kind && a.recipeId === recipeId);
  const push = (name: string, a: ArtifactLine | undefined, train?: number) => {
    if (a) rows.push({ name, a, ...(train !== undefined ? { train } : {}) });
  };
  push('teacher fp32', find('teacher-fp32'), d.teacher);
  push('student fp32 (hard labels)', find('student-hard-fp32'), d.studentHard);
  push('student fp32 (distilled)', find('student-fp32'), d.distill);
  for (const r of BENCH_RECIPES) push(`student int8 PTQ ${r.id}`, find('student-int8-ptq', r.id), (d.distill ?? 0) + (d.recipes?.[r.id]?.ptq ?? 0));
  for (const r of BENCH_RECIPES) push(`student int8 KD+QAT ${r.id}`, find('student-int8-qat', r.id), (d.distill ?? 0) + (d.recipes?.[r.id]?.qat ?? 0));

  const measured: { name: string; acc: number; size: number; p50: number; tput: number; train?: number; refAgree: number }[] = [];
  for (const r of rows) {
    const path = join(outDir, r.a.file);
    const { session } = await openSession(path, 1);
    const { accuracy, predictions } = await evalAccuracy(session, es);
    const ref = r.a.referencePredictionsFile ? new Uint8Array(readFileSync(join(outDir, r.a.referencePredictionsFile))) : undefined;
    let agree = 0;
    if (ref) for (let i = 0; i < es.count; i++) if (ref[i] === predictions[i]) agree++;
    const lat = await latency(session, shape1, { minQueries: 300, minSeconds: quick ? 1 : 3 });
    const tput = await throughput(session, shape64, quick ? 1 : 2);
    await session.release();
    measured.push({ name: r.name, acc: accuracy, size: r.a.sizeBytes, p50: lat.p50, tput, refAgree: ref ? agree / es.count : NaN, ...(r.train !== undefined ? { train: r.train } : {}) });
    log(`measured ${r.name}: top-1 ${(accuracy * 100).toFixed(2)}% p50 ${lat.p50.toFixed(3)} ms`);
  }

  const teacher = measured[0]!;
  const table = formatTable(
    ['model', 'top-1 (ORT, 10k test)', 'agree w/ torch', 'file size', 'size vs teacher', 'p50 b1 (ms)', 'speed-up vs teacher', 'b64 thrpt (img/s)', 'training time'],
    measured.map((m) => [
      m.name,
      `${(m.acc * 100).toFixed(2)}%`,
      Number.isNaN(m.refAgree) ? '-' : `${(m.refAgree * 100).toFixed(2)}%`,
      fmtBytes(m.size),
      `${(m.size / teacher.size).toFixed(3)}x`,
      fmtMs(m.p50),
      `${(teacher.p50 / m.p50).toFixed(2)}x`,
      Math.round(m.tput),
      fmtSecs(m.train),
    ]),
  );
  console.log(`\nTraining bench: Fashion-MNIST${quick ? ' (QUICK subset)' : ' (60k train / 10k test)'}, ${cpus().length}-core CPU (${cpus()[0]?.model ?? '?'}), onnxruntime-node 1 thread`);
  console.log(`epochs: teacher ${spec.teacher.kind === 'zoo' ? spec.teacher.epochs : 0}, student hard ${spec.training.studentHardEpochs}, distill ${spec.distill.epochs}, QAT ${spec.qat.epochs} per recipe; trainer wall time ${fmtSecs(trainWall)}\n`);
  console.log(table);

  const goals: string[][] = [];
  const t = teacher;
  goals.push(['teacher top-1 >= 93.5%', `${(t.acc * 100).toFixed(2)}%`, t.acc >= 0.935 ? 'met' : 'NOT met']);
  for (const m of measured.filter((x) => x.name.startsWith('student int8 KD+QAT'))) {
    const id = m.name.replace('student int8 KD+QAT ', '');
    goals.push([`${id}: file <= 1/10 teacher`, `${(m.size / t.size).toFixed(3)}x`, m.size <= t.size / 10 ? 'met' : 'NOT met']);
    goals.push([`${id}: b1 latency >= 5x faster`, `${(t.p50 / m.p50).toFixed(2)}x`, t.p50 / m.p50 >= 5 ? 'met' : 'NOT met']);
    goals.push([`${id}: top-1 >= 98.5% of teacher`, `${((m.acc / t.acc) * 100).toFixed(2)}%`, m.acc >= 0.985 * t.acc ? 'met' : 'NOT met']);
  }
  console.log('\nGoals (same run):\n');
  console.log(formatTable(['goal', 'measured', 'status'], goals));
  const mp = Object.entries(res.diagnostics).map(([id, dg]) => [id, dg.outlierLayers.join(' ') || '-', dg.mixedPrecision?.floatLayers.join(' ') || '-', dg.mixedPrecision?.decision ?? '-']);
  console.log('\nDiagnostics:\n');
  console.log(formatTable(['recipe', 'outlier layers', 'float layers (mixed precision)', 'decision'], mp));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
