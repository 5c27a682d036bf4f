import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SYSTEM_PYTHON } from './models.ts';

/**
 * Candidate sets for tuning tests: one CNN per size as fp32, as QDQ int8 (u8 activations, s8 per-channel weights)
 * and as a QDQ int8 whose first conv's weights are a quarter of what their scales say (a constraint-breaking
 * accuracy drop on every CPU), with an eval set labelled by the fp32 model (fp32 scores 100%).
 * `tiny` is overhead-bound (int8 slower than fp32 on x86 here), `large` is kernel-bound (int8 faster where the
 * host has fast int8 kernels): the tests measure which, they do not assume it.
 */
const SCRIPT = String.raw`
import sys, struct, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
out, name, C, H, F, L, N = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
K = 10
rng = np.random.default_rng(7)
# per-sample, per-channel and per-quadrant brightness, so pooled features (and the labels) differ between samples
gain = rng.uniform(0.05, 1.0, (N, C, 2, 2)).repeat((H + 1) // 2, axis=2).repeat((H + 1) // 2, axis=3)[:, :, :H, :H]
pixels = (rng.integers(0, 256, (N, C, H, H)) * gain).astype(np.uint8)
arr = numpy_helper.from_array
convs = []
cin = C
for i in range(L):
    w = rng.normal(0, (2.0 / (cin * 9)) ** 0.5, (F, cin, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.05, F).astype(np.float32)
    convs.append((w, b)); cin = F
w2 = rng.normal(0, 0.5, (K, F)).astype(np.float32); b2 = np.zeros(K, np.float32)

def conv_np(x, w, b):
    import torch
    return torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1).numpy()
x = pixels.astype(np.float32) / 255
ranges = [1.0]
for w, b in convs:
    x = np.maximum(conv_np(x, w, b), 0); ranges.append(float(x.max()))
logits = x.mean(axis=(2, 3)) @ w2.T + b2
preds = logits.argmax(1).astype(np.uint8)

def save(nodes, inits, fname):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', C, H, H])],
                          [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['N', K])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], producer_name='edgefleet-test'); m.ir_version = 7
    onnx.checker.check_model(m); onnx.save(m, f'{out}/{fname}')

tail = [helper.make_node('GlobalAveragePool', [f'r{L}'], ['p']), helper.make_node('Flatten', ['p'], ['f']),
        helper.make_node('Gemm', ['f', 'fcw', 'fcb'], ['logits'], transB=1)]
nodes, inits = [], [arr(w2, 'fcw'), arr(b2, 'fcb')]
prev = 'input'
for i, (w, b) in enumerate(convs):
    nodes += [helper.make_node('Conv', [prev, f'w{i}', f'b{i}'], [f'c{i+1}'], pads=[1, 1, 1, 1]), helper.make_node('Relu', [f'c{i+1}'], [f'r{i+1}'])]
    inits += [arr(w, f'w{i}'), arr(b, f'b{i}')]; prev = f'r{i+1}'
save(nodes + tail, inits, f'{name}-fp32.onnx')

for variant, broken in (('int8', False), ('int8-broken', True)):
    nodes, inits = [], [arr(w2, 'fcw'), arr(b2, 'fcb'), arr(np.array(0, np.uint8), 'zp')]
    prev = 'input'
    for i, (w, b) in enumerate(convs):
        xs = np.float32(ranges[i] / 255)
        ws = (np.abs(w).reshape(F, -1).max(1) / 127).astype(np.float32)
        wq = np.clip(np.round(w / ws[:, None, None, None]), -127, 127).astype(np.int8)
        if broken and i == 0: wq[0::2] = -wq[0::2]  # half the channels' weights with the wrong sign, as a sign-flipped scale would
        nodes += [helper.make_node('QuantizeLinear', [prev, f'xs{i}', 'zp'], [f'xq{i}']),
                  helper.make_node('DequantizeLinear', [f'xq{i}', f'xs{i}', 'zp'], [f'xd{i}']),
                  helper.make_node('DequantizeLinear', [f'wq{i}', f'ws{i}', f'wz{i}'], [f'wd{i}'], axis=0),
                  helper.make_node('Conv', [f'xd{i}', f'wd{i}', f'b{i}'], [f'c{i+1}'], pads=[1, 1, 1, 1]),
                  helper.make_node('Relu', [f'c{i+1}'], [f'r{i+1}'])]
        inits += [arr(np.array(xs), f'xs{i}'), arr(wq, f'wq{i}'), arr(ws, f'ws{i}'), arr(np.zeros(F, np.int8), f'wz{i}'), arr(b, f'b{i}')]
        prev = f'r{i+1}'
    # the last activation quantized too, so the last conv's output is u8 and fuses into QLinearConv
    rs = np.float32(ranges[L] / 255)
    nodes += [helper.make_node('QuantizeLinear', [prev, 'rs', 'zp'], ['rq']), helper.make_node('DequantizeLinear', ['rq', 'rs', 'zp'], [f'r{L}q'])]
    inits += [arr(np.array(rs), 'rs')]
    t = [helper.make_node('GlobalAveragePool', [f'r{L}q'], ['p']), helper.make_node('Flatten', ['p'], ['f']),
         helper.make_node('Gemm', ['f', 'fcw', 'fcb'], ['logits'], transB=1)]
    save(nodes + t, inits, f'{name}-{variant}.onnx')

with open(f'{out}/{name}-evalset.bin', 'wb') as f:
    f.write(b'EFEV' + struct.pack('<6I', 1, N, C, H, H, K) + preds.tobytes() + pixels.tobytes())
with open(f'{out}/{name}-refpred.bin', 'wb') as f:
    f.write(preds.tobytes())
`;

export type CandidateFiles = { fp32: string; int8: string; broken: string; evalSet: string; referencePredictions: string };
export type TuningModelSize = { channels: number; size: number; filters: number; layers: number; samples: number };

/** tiny: 1x2x2 input, eight 1-filter convs (int8 measured 1.5x slower than fp32 here); large: 3x32x32, three 64-filter convs. */
export const TUNING_MODEL_SIZES = {
  tiny: { channels: 1, size: 2, filters: 1, layers: 8, samples: 64 },
  large: { channels: 3, size: 32, filters: 64, layers: 3, samples: 64 },
} satisfies Record<string, TuningModelSize>;

export function makeTuningCandidates(dir: string, name: keyof typeof TUNING_MODEL_SIZES): CandidateFiles | null {
  if (!existsSync(SYSTEM_PYTHON)) return null;
  const s = TUNING_MODEL_SIZES[name];
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', SCRIPT, dir, name, String(s.channels), String(s.size), String(s.filters), String(s.layers), String(s.samples)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
  } catch {
    return null;
  }
  const f = (x: string): string => join(dir, `${name}-${x}`);
  return { fp32: f('fp32.onnx'), int8: f('int8.onnx'), broken: f('int8-broken.onnx'), evalSet: f('evalset.bin'), referencePredictions: f('refpred.bin') };
}
