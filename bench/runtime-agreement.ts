import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { agreement, argmaxRows, evalSetBatch, parseEvalSet } from '../shared/evalset.ts';
const dir = process.argv[2]!;
const ev = parseEvalSet(readFileSync(join(dir, 'evalset.bin')));
if (!ev.ok) throw new Error(ev.error);
const e = ev.value;
for (const f of readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort()) {
  const ref = new Uint8Array(readFileSync(join(dir, f.replace('.onnx', '.refpred.bin'))));
  const row: string[] = [f.padEnd(44)];
  for (const level of ['basic', 'all'] as const) {
    const s = await ort.InferenceSession.create(join(dir, f), { graphOptimizationLevel: level, intraOpNumThreads: 1, executionMode: 'sequential' });
    const preds = new Uint8Array(e.count);
    for (let i = 0; i < e.count; i++) {
      const x = new ort.Tensor('float32', evalSetBatch(e, i, 1), [1, e.channels, e.height, e.width]);
      const out = await s.run({ [s.inputNames[0]!]: x });
      preds[i] = argmaxRows(out[s.outputNames[0]!]!.data as Float32Array, e.numClasses)[0]!;
    }
    let c = 0; for (let i = 0; i < e.count; i++) if (preds[i] === e.labels[i]) c++;
    row.push(`${level}: agree ${(agreement(preds, ref) * 100).toFixed(1)}% acc ${(c / e.count * 100).toFixed(1)}%`);
  }
  console.log(row.join('  '));
}
