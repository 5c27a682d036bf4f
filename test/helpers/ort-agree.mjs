// Plain JavaScript (no tsx, so it starts quickly under an emulator): runs one model in onnxruntime-node over an
// EdgeFleet eval set, one sample at a time, and prints {"n","agreement","accuracy"} as JSON.
// Usage: node ort-agree.mjs '<session options JSON>' model.onnx evalset.bin refpred.bin [limit]
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [optsJson, model, evalPath, refPath, limitArg] = process.argv.slice(2);
const buf = readFileSync(evalPath);
if (buf.subarray(0, 4).toString('latin1') !== 'EFEV') throw new Error(`${evalPath}: not an eval set`);
const [, count, c, h, w] = Array.from({ length: 6 }, (_, i) => buf.readUInt32LE(4 + 4 * i));
const labels = buf.subarray(28, 28 + count);
const pixels = buf.subarray(28 + count);
const ref = readFileSync(refPath);
const n = Math.min(count, limitArg ? Number(limitArg) : count);
const per = c * h * w;
const session = await ort.InferenceSession.create(model, JSON.parse(optsJson));
let agree = 0;
let correct = 0;
for (let i = 0; i < n; i++) {
  const x = new Float32Array(per);
  for (let j = 0; j < per; j++) x[j] = pixels[i * per + j] / 255;
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, c, h, w]) });
  const logits = out[session.outputNames[0]].data;
  let best = 0;
  for (let k = 1; k < logits.length; k++) if (logits[k] > logits[best]) best = k;
  if (best === ref[i]) agree++;
  if (best === labels[i]) correct++;
}
await session.release();
process.stdout.write(JSON.stringify({ n, agreement: agree / n, accuracy: correct / n }) + '\n');
