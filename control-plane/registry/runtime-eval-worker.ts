import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { argmaxRows, evalSetBatch, parseEvalSet } from '../../shared/evalset.ts';
import { ortSessionOptions } from '../../shared/ort-session.ts';
import { hostKernelFacts } from '../../agent/benchmark/host-kernels.ts';
import type { RuntimeEvalRequest, RuntimeEvalWorkerMessage } from './runtime-eval.ts';

/**
 * Runs in a child process (see runtime-eval.ts): onnxruntime inference on the control-plane host
 * must never block its event loop. One sample at a time, as the agent's benchmark feeds them, so
 * what is measured here is what a device's single-stream run computes.
 */
if (!process.send) throw new Error('control-plane/registry/runtime-eval-worker.ts must run as a forked child process');
const send = process.send.bind(process);
const post = (m: RuntimeEvalWorkerMessage): void => void send(m);
/** The agent's rule on this host: the U8U8 remedy where u8×s8 saturates (shared/ort-session.ts). */
const KERNELS = hostKernelFacts();
process.on('disconnect', () => process.exit(0));
process.on('message', (m: { type: 'run'; request: RuntimeEvalRequest }) => {
  if (m.type !== 'run') return;
  run(m.request).then(
    () => post({ type: 'done' }),
    (e: unknown) => post({ type: 'fatal', message: e instanceof Error ? e.message : String(e) }),
  );
});

async function run(req: RuntimeEvalRequest): Promise<void> {
  for (const job of req.models) {
    try {
      post({ type: 'model', key: job.key, ok: true, value: await evaluate(job, req.threads) });
    } catch (e) {
      post({ type: 'model', key: job.key, ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  }
}

async function evaluate(job: RuntimeEvalRequest['models'][number], threads: number): Promise<{ evaluated: number; accuracy: number; agreement: number | null; predictions: Uint8Array }> {
  const parsed = parseEvalSet(readFileSync(job.evalsetPath));
  if (!parsed.ok) throw new Error(`eval set ${job.evalsetPath}: ${parsed.error}`);
  const ev = parsed.value;
  const ref = job.referencePredictionsPath ? new Uint8Array(readFileSync(job.referencePredictionsPath)) : null;
  if (ref && ref.length !== ev.count) throw new Error(`reference predictions: ${ref.length} for ${ev.count} eval samples`);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(job.modelPath, ortSessionOptions(threads, KERNELS));
  } catch (e) {
    throw new Error(`onnxruntime cannot load the model: ${(e as Error).message}`);
  }
  try {
    const input = session.inputNames[0];
    const output = session.outputNames[0];
    if (!input || !output || session.inputNames.length !== 1) throw new Error(`model has ${session.inputNames.length} inputs; the eval set feeds exactly one`);
    const predictions = new Uint8Array(ev.count);
    let correct = 0;
    let agreeing = 0;
    for (let i = 0; i < ev.count; i++) {
      const x = new ort.Tensor('float32', evalSetBatch(ev, i, 1), [1, ev.channels, ev.height, ev.width]);
      const out = await session.run({ [input]: x });
      const logits = out[output]?.data;
      if (!(logits instanceof Float32Array)) throw new Error(`output "${output}" is not float32 logits`);
      const p = argmaxRows(logits, logits.length)[0]!;
      predictions[i] = p;
      if (p === ev.labels[i]) correct++;
      if (ref && p === ref[i]) agreeing++;
    }
    return { evaluated: ev.count, accuracy: ev.count ? correct / ev.count : 0, agreement: ref && ev.count ? agreeing / ev.count : null, predictions };
  } finally {
    await session.release();
  }
}
