import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Debian's python with onnx (the first python3 on PATH lacks it). */
export const SYSTEM_PYTHON = '/usr/bin/python3';

const SCRIPT = String.raw`
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
out = sys.argv[1]
rng = np.random.default_rng(0)

def save(graph, name):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], producer_name='edgefleet-test')
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, out + '/' + name)

# fp32 CNN, dynamic batch: input N x 3 x 16 x 16 -> 10 logits
w1 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), 'w1')
b1 = numpy_helper.from_array(np.zeros(8, np.float32), 'b1')
w2 = numpy_helper.from_array(rng.normal(0, 0.3, (10, 8)).astype(np.float32), 'w2')
b2 = numpy_helper.from_array(rng.normal(0, 0.1, 10).astype(np.float32), 'b2')
nodes = [
    helper.make_node('Conv', ['input', 'w1', 'b1'], ['c1'], pads=[1, 1, 1, 1]),
    helper.make_node('Relu', ['c1'], ['r1']),
    helper.make_node('GlobalAveragePool', ['r1'], ['p1']),
    helper.make_node('Flatten', ['p1'], ['f1']),
    helper.make_node('Gemm', ['f1', 'w2', 'b2'], ['logits'], transB=1),
]
g = helper.make_graph(nodes, 'cnn', [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', 3, 16, 16])],
                      [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['N', 10])], [w1, b1, w2, b2])
save(g, 'cnn-fp32.onnx')

# integer kernels, fixed batch 1: input 1 x 64 -> DynamicQuantizeLinear -> MatMulInteger -> rescale -> 10 logits
wq = numpy_helper.from_array(rng.integers(0, 255, (64, 10)).astype(np.uint8), 'wq')
wzp = numpy_helper.from_array(np.array(128, np.uint8), 'wzp')
ws = numpy_helper.from_array(np.array(0.01, np.float32), 'ws')
nodes = [
    helper.make_node('DynamicQuantizeLinear', ['input'], ['xq', 'xs', 'xzp']),
    helper.make_node('MatMulInteger', ['xq', 'wq', 'xzp', 'wzp'], ['acc']),
    helper.make_node('Cast', ['acc'], ['accf'], to=TensorProto.FLOAT),
    helper.make_node('Mul', ['xs', 'ws'], ['scale']),
    helper.make_node('Mul', ['accf', 'scale'], ['logits']),
]
g = helper.make_graph(nodes, 'int', [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 64])],
                      [helper.make_tensor_value_info('logits', TensorProto.FLOAT, [1, 10])], [wq, wzp, ws])
save(g, 'matmul-integer.onnx')
`;

export type TestModels = { cnnFp32: string; matmulInteger: string };

/** Writes two tiny ONNX models into `dir`; null when the system python has no onnx (tests then skip). */
export function makeTestModels(dir: string): TestModels | null {
  if (!existsSync(SYSTEM_PYTHON)) return null;
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', SCRIPT, dir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  } catch {
    return null;
  }
  return { cnnFp32: join(dir, 'cnn-fp32.onnx'), matmulInteger: join(dir, 'matmul-integer.onnx') };
}
