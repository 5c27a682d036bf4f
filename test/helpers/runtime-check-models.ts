import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SYSTEM_PYTHON } from './models.ts';

/**
 * Three hand-built QDQ models (1x4x4 u8 input, one 4x4 Conv to 4 classes, 200 eval samples) for the
 * central runtime check, each with the exact model's top-1 as reference and as labels:
 * - `saturating`: full 8-bit weights (127 on five adjacent pairs): u8×s8 pair sums reach 64770,
 *   beyond int16, so AVX2's vpmaddubsw saturates them; exact on VNNI, ARM dot product and SSE;
 * - `reduced`: the same with 7-bit weights (≤64, reduce_range): pair sums stay ≤32640, exact everywhere;
 * - `wrongScale`: class 0's int8 weights a quarter of what its scale says: wrong on every CPU.
 * Null when /usr/bin/python3 lacks numpy/onnx.
 */
const SCRIPT = String.raw`
import sys, struct, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
out = sys.argv[1]
rng = np.random.default_rng(1)
N, H, W, K = 200, 4, 4, 4
pixels = rng.integers(200, 256, (N, 1, H, W)).astype(np.uint8)
pixels.reshape(N, 16)[::2, :10] = rng.integers(90, 140, (N // 2, 10))   # dim first rows: class 1 wins on these
def weights(full):
    w = np.zeros((K, 16), np.int64)
    hi, mid = (127, 64) if full else (64, 32)
    w[0, :10] = hi            # five adjacent pairs of large weights: u8*s8 pair sums above int16 on AVX2 when full
    w[1, :] = mid             # every pair below int16
    w[2, :] = rng.integers(-20, 20, 16)
    w[3, ::2] = mid
    return w
for name, full, wrong_scale in (('saturating', True, False), ('reduced', False, False), ('wrong-scale', False, True)):
    w = weights(full)
    acc = pixels.reshape(N, 16).astype(np.int64) @ w.T          # exact integer accumulation = PyTorch's fake-quant math
    sx = np.float32(1 / 255); sw = np.float32(0.01)
    logits = acc.astype(np.float64) * float(sx) * float(sw)
    preds = logits.argmax(1).astype(np.uint8)
    ymax = float(np.abs(logits).max()) * 1.05
    sy = np.float32(ymax / 127)
    arr = numpy_helper.from_array
    wq = w.reshape(K, 1, H, W).astype(np.int8)
    if wrong_scale:
        wq = wq.copy(); wq[0] = wq[0] // 4   # class 0's weights a quarter of what its scale says, as a wrong scale edited in would
    nodes = [
        helper.make_node('QuantizeLinear', ['input', 'sx', 'zx'], ['xq']),
        helper.make_node('DequantizeLinear', ['xq', 'sx', 'zx'], ['xd']),
        helper.make_node('DequantizeLinear', ['wq', 'sw', 'zw'], ['wd']),
        helper.make_node('Conv', ['xd', 'wd'], ['c']),
        helper.make_node('QuantizeLinear', ['c', 'sy', 'zy'], ['cq']),
        helper.make_node('DequantizeLinear', ['cq', 'sy', 'zy'], ['cd']),
        helper.make_node('Flatten', ['cd'], ['logits']),
    ]
    inits = [arr(np.array(sx), 'sx'), arr(np.array(0, np.uint8), 'zx'), arr(wq, 'wq'), arr(np.array(sw), 'sw'), arr(np.array(0, np.int8), 'zw'),
             arr(np.array(sy), 'sy'), arr(np.array(128, np.uint8), 'zy')]
    g = helper.make_graph(nodes, 'rt', [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', 1, H, W])],
                          [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['N', K])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], producer_name='edgefleet-test'); m.ir_version = 7
    onnx.checker.check_model(m); onnx.save(m, f'{out}/{name}.onnx')
    with open(f'{out}/{name}.refpred.bin', 'wb') as f: f.write(preds.tobytes())
labels = preds  # the exact model's top-1: a faithful runtime scores 100%
with open(out + '/evalset.bin', 'wb') as f:
    f.write(b'EFEV' + struct.pack('<6I', 1, N, 1, H, W, K) + labels.tobytes() + pixels.tobytes())
`;

export type RuntimeCheckModels = { saturating: string; reduced: string; wrongScale: string; evalSet: string; refpred: (name: 'saturating' | 'reduced' | 'wrong-scale') => string };

export function makeRuntimeCheckModels(dir: string): RuntimeCheckModels | null {
  if (!existsSync(SYSTEM_PYTHON)) return null;
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', SCRIPT, dir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  } catch {
    return null;
  }
  return {
    saturating: join(dir, 'saturating.onnx'),
    reduced: join(dir, 'reduced.onnx'),
    wrongScale: join(dir, 'wrong-scale.onnx'),
    evalSet: join(dir, 'evalset.bin'),
    refpred: (name) => join(dir, `${name}.refpred.bin`),
  };
}
