import type { BenchmarkResult } from '../../../shared/messages.ts';
import type { ApiClient } from '../client.ts';

/**
 * The quick start's whole loop on the local agent: a distillation + QAT job on the built-in
 * Fashion-MNIST, a rollout of its int8 model to the agent's profile, and the agent's own report.
 * `small` (the default) is sized to finish in a few minutes on 2 CPU cores and still runs every phase
 * (teacher, distillation, QAT for the agent's profile's recipe only); `full` is the earlier, more accurate
 * job (8000 samples, 3+3+1 epochs: about 25 minutes on 2 cores).
 */
export const DEMO_SIZES = {
  small: { trainSamples: 3000, testSamples: 1000, evalSetSize: 300, teacherEpochs: 2, distillEpochs: 2, qatEpochs: 1, batchSize: 64 },
  full: { trainSamples: 8000, testSamples: 2000, evalSetSize: 500, teacherEpochs: 3, distillEpochs: 3, qatEpochs: 1, batchSize: 128 },
} as const;
export type DemoSize = keyof typeof DEMO_SIZES;
export const isDemoSize = (s: string): s is DemoSize => Object.hasOwn(DEMO_SIZES, s);

export const DEMO_JOB = (profileId: string, size: DemoSize = 'small') => {
  const z = DEMO_SIZES[size];
  return {
    name: size === 'small' ? 'demo' : 'demo-full',
    teacher: { kind: 'zoo', arch: 'resnet-teacher', width: 0.5, depth: 1, epochs: z.teacherEpochs },
    student: { kind: 'zoo', arch: 'compact-cnn', width: 1 },
    dataset: { kind: 'fashion-mnist' },
    profiles: [profileId],
    hyperparameters: {
      threads: 2,
      limits: { trainSamples: z.trainSamples, testSamples: z.testSamples },
      evalSetSize: z.evalSetSize,
      training: { batchSize: z.batchSize, studentHardEpochs: 0 },
      distill: { epochs: z.distillEpochs },
      qat: { epochs: z.qatEpochs },
      ptq: { enabled: false },
    },
  };
};

type Job = { id: string; state: string; error?: { message?: string } | string | null; progress?: Record<string, unknown> | null };
type Bench = { modelId: string; version: number; result: BenchmarkResult; baseline: BenchmarkResult | null; speedup: number | null };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);
const ms = (x: number) => `${x.toFixed(3)} ms`;

export async function runDemo(api: ApiClient, deviceId: string, say: (line: string) => void, opts: { timeoutMs?: number; size?: DemoSize } = {}): Promise<{ ok: boolean }> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30 * 60_000);
  const device = await api.get<{ profileId: string | null }>(`/devices/${encodeURIComponent(deviceId)}`);
  if (!device.profileId) throw new Error(`device ${deviceId} has no profile`);
  const size = opts.size ?? 'small';
  say(`\ndemo 1/3: distill + quantization-aware training for profile ${device.profileId} on Fashion-MNIST (${size}: ${DEMO_SIZES[size].trainSamples} samples, small models)`);
  let job = await api.post<Job>('/training-jobs', DEMO_JOB(device.profileId, size));
  let last = '';
  while (!['succeeded', 'failed', 'cancelled', 'interrupted'].includes(job.state)) {
    if (Date.now() > deadline) throw new Error(`training job ${job.id} did not finish in time`);
    await sleep(1000);
    job = await api.get<Job>(`/training-jobs/${job.id}`);
    const p = job.progress ?? {};
    const line = `  ${job.state} ${String(p.phase ?? '')}${p.recipeId ? `/${String(p.recipeId)}` : ''} epoch ${String(p.epoch ?? '-')}/${String(p.epochs ?? '-')} step ${String(p.step ?? '-')}/${String(p.totalSteps ?? '-')} loss ${typeof p.loss === 'number' ? p.loss.toFixed(3) : '-'} acc ${typeof p.accuracy === 'number' ? pct(p.accuracy) : '-'} eta ${typeof p.etaSeconds === 'number' ? `${Math.round(p.etaSeconds)} s` : '-'} job eta ${typeof p.jobEtaSeconds === 'number' ? `${Math.round(p.jobEtaSeconds)} s` : '-'}`;
    if (line !== last) say(line);
    last = line;
  }
  if (job.state !== 'succeeded') {
    say(`  training ${job.state}: ${typeof job.error === 'string' ? job.error : (job.error?.message ?? '')}`);
    return { ok: false };
  }
  const models = await api.get<{ items: { id: string; version: number; profileId: string | null; metrics: Record<string, number | null> }[] }>(
    `/models?job=${encodeURIComponent(job.id)}&role=student-int8-qat&profile=${encodeURIComponent(device.profileId)}`,
  );
  const model = models.items[0];
  if (!model) throw new Error(`job ${job.id} registered no int8 model for ${device.profileId}`);
  say(`  registered ${model.id} v${model.version} (signed); central accuracy: teacher ${pct(model.metrics.teacherFp32)}, student fp32 ${pct(model.metrics.studentFp32)}, student int8 ${pct(model.metrics.studentInt8)}`);

  say(`\ndemo 2/3: rollout of ${model.id} v${model.version} to profile ${device.profileId}`);
  const created = await api.post<{ summary: { id: string } }>('/rollouts', { name: 'demo', models: [{ modelId: model.id, version: model.version, profileId: device.profileId }] });
  const rolloutId = created.summary.id;
  let state = '';
  let r: { summary: { state: string; abortReason: string | null }; devices: { deviceId: string; state: string }[] };
  for (;;) {
    if (Date.now() > deadline) throw new Error(`rollout ${rolloutId} did not finish in time`);
    r = await api.get(`/rollouts/${rolloutId}`);
    const s = `  ${r.summary.state}: ${r.devices.map((d) => `${d.deviceId} ${d.state}`).join(', ')}`;
    if (s !== state) say(s);
    state = s;
    if (['succeeded', 'aborted', 'rolled-back'].includes(r.summary.state)) break;
    await sleep(500);
  }
  if (r.summary.state !== 'succeeded') {
    say(`  rollout ${r.summary.state}: ${r.summary.abortReason ?? ''}`);
    return { ok: false };
  }

  say(`\ndemo 3/3: what the agent measured on this machine (its own report)`);
  const installs = await api.get<{ benchmarks: Bench[] }>(`/devices/${encodeURIComponent(deviceId)}/installs`);
  const b = installs.benchmarks.find((x) => x.modelId === model.id && x.version === model.version);
  if (!b) throw new Error('no benchmark report arrived');
  const rows: [string, string, string][] = [
    ['', 'int8 (QDQ)', 'fp32 student'],
    ['runtime / threads', `${b.result.runtime} / ${b.result.threads}`, b.baseline ? `${b.baseline.runtime} / ${b.baseline.threads}` : '-'],
    ['latency p50', ms(b.result.latencyMs.p50), b.baseline ? ms(b.baseline.latencyMs.p50) : '-'],
    ['latency p90', ms(b.result.latencyMs.p90), b.baseline ? ms(b.baseline.latencyMs.p90) : '-'],
    ['latency p99', ms(b.result.latencyMs.p99), b.baseline ? ms(b.baseline.latencyMs.p99) : '-'],
    ['queries', String(b.result.latencyMs.count), b.baseline ? String(b.baseline.latencyMs.count) : '-'],
    [`throughput (batch ${b.result.throughputBatchSize})`, `${b.result.throughputPerSecond.toFixed(0)}/s`, b.baseline ? `${b.baseline.throughputPerSecond.toFixed(0)}/s` : '-'],
    ['session create (cold load)', ms(b.result.sessionCreateMs), b.baseline ? ms(b.baseline.sessionCreateMs) : '-'],
    ['peak RSS', `${(b.result.peakRssBytes / 2 ** 20).toFixed(1)} MiB`, b.baseline ? `${(b.baseline.peakRssBytes / 2 ** 20).toFixed(1)} MiB` : '-'],
    ['file size', `${(b.result.fileSizeBytes / 1024).toFixed(1)} KiB`, b.baseline ? `${(b.baseline.fileSizeBytes / 1024).toFixed(1)} KiB` : '-'],
    ['eval-set accuracy', pct(b.result.accuracy), b.baseline ? pct(b.baseline.accuracy) : '-'],
    ['agreement with PyTorch', pct(b.result.agreement), b.baseline ? pct(b.baseline.agreement) : '-'],
    ['time in integer kernels', pct(b.result.integerKernelShare), '-'],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.map((x) => x[1].length));
  for (const [a, c, d] of rows) say(`  ${a.padEnd(w0)}  ${c.padStart(w1)}  ${d}`);
  const speedup = b.speedup ?? (b.baseline ? b.baseline.latencyMs.p50 / b.result.latencyMs.p50 : null);
  say(`  int8 vs fp32 (p50, measured by the agent in one run): ${speedup === null ? '-' : `${speedup.toFixed(2)}x`}`);
  return { ok: true };
}
