import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Debian's python with torch 1.13 and onnx (the first python3 on PATH has neither). */
export const SYSTEM_PYTHON = '/usr/bin/python3';

const SCRIPT = String.raw`
import sys, struct, numpy as np, torch, onnx
from onnx import helper, TensorProto, numpy_helper
out = sys.argv[1]
torch.manual_seed(0)
rng = np.random.default_rng(0)
N, C, H, W, K, F = 64, 3, 16, 16, 10, 16

conv = torch.nn.Conv2d(C, F, 3, padding=1)
fc = torch.nn.Linear(F, K)
pixels = rng.integers(0, 256, (N, C, H, W)).astype(np.uint8)
with torch.no_grad():
    x = torch.from_numpy(pixels.astype(np.float32) / 255)
    r = torch.relu(conv(x))
    logits = fc(r.mean(dim=(2, 3)))
    preds = logits.argmax(1).numpy().astype(np.uint8)
    rmax = float(r.max())
w1 = conv.weight.detach().numpy(); b1 = conv.bias.detach().numpy()
w2 = fc.weight.detach().numpy(); b2 = fc.bias.detach().numpy()

def save(nodes, inits, name):
    g = helper.make_graph(nodes, 'cnn', [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', C, H, W])],
                          [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['N', K])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], producer_name='edgefleet-test')
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, out + '/' + name)

arr = numpy_helper.from_array
tail = [helper.make_node('GlobalAveragePool', ['r1'], ['p1']), helper.make_node('Flatten', ['p1'], ['f1']),
        helper.make_node('Gemm', ['f1', 'w2', 'b2'], ['logits'], transB=1)]
save([helper.make_node('Conv', ['input', 'w1', 'b1'], ['c1'], pads=[1, 1, 1, 1]), helper.make_node('Relu', ['c1'], ['r1'])] + tail,
     [arr(w1, 'w1'), arr(b1, 'b1'), arr(w2, 'w2'), arr(b2, 'b2')], 'cnn-fp32.onnx')

# QDQ: u8 activations (zero point 0), int8 symmetric per-channel weights stored as int8 initializers
ws = (np.abs(w1).reshape(F, -1).max(1) / 127).astype(np.float32)
w1q = np.clip(np.round(w1 / ws[:, None, None, None]), -127, 127).astype(np.int8)
xs, rs = np.float32(1 / 255), np.float32(rmax / 255)
q = [
    helper.make_node('QuantizeLinear', ['input', 'xs', 'zp_u8'], ['xq']),
    helper.make_node('DequantizeLinear', ['xq', 'xs', 'zp_u8'], ['xd']),
    helper.make_node('DequantizeLinear', ['w1q', 'ws', 'wzp'], ['w1d'], axis=0),
    helper.make_node('Conv', ['xd', 'w1d', 'b1'], ['c1'], pads=[1, 1, 1, 1]),
    helper.make_node('Relu', ['c1'], ['r1f']),
    helper.make_node('QuantizeLinear', ['r1f', 'rs', 'zp_u8'], ['r1q']),
    helper.make_node('DequantizeLinear', ['r1q', 'rs', 'zp_u8'], ['r1']),
]
save(q + tail, [arr(np.array(xs), 'xs'), arr(np.array(rs), 'rs'), arr(np.array(0, np.uint8), 'zp_u8'), arr(w1q, 'w1q'), arr(ws, 'ws'),
                arr(np.zeros(F, np.int8), 'wzp'), arr(b1, 'b1'), arr(w2, 'w2'), arr(b2, 'b2')], 'cnn-int8-qdq.onnx')

with open(out + '/evalset.bin', 'wb') as f:
    f.write(b'EFEV' + struct.pack('<6I', 1, N, C, H, W, K) + preds.tobytes() + pixels.tobytes())
with open(out + '/reference-predictions.bin', 'wb') as f:
    f.write(preds.tobytes())
`;

export type DeliveryTestModels = { fp32: string; int8: string; evalSet: string; referencePredictions: string };

/**
 * A tiny CNN (3x16x16 -> 10) as fp32 and as QDQ int8, an eval set of 64 images labelled by the fp32 model, and its
 * predictions as the reference. Null when /usr/bin/python3 lacks torch or onnx (tests then skip).
 */
export function makeDeliveryTestModels(dir: string): DeliveryTestModels | null {
  if (!existsSync(SYSTEM_PYTHON)) return null;
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', SCRIPT, dir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
  } catch {
    return null;
  }
  return { fp32: join(dir, 'cnn-fp32.onnx'), int8: join(dir, 'cnn-int8-qdq.onnx'), evalSet: join(dir, 'evalset.bin'), referencePredictions: join(dir, 'reference-predictions.bin') };
}
