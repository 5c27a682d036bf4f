/**
 * Reads ONNX Runtime's profiler output (chrome-trace JSON) and splits kernel time by op type.
 *
 * "Integer" means the op does its arithmetic on 8-bit integers. QuantizeLinear / DequantizeLinear are not in the
 * set: they convert between float and int8 at the edges of integer regions and do no integer compute, so a model
 * full of un-fused Q/DQ pairs (the symptom of a recipe the kernels cannot fuse) shows a low share, as it should.
 */
export const INTEGER_OPS: ReadonlySet<string> = new Set([
  'QLinearConv',
  'QLinearMatMul',
  'MatMulInteger',
  'ConvInteger',
  'QGemm',
  'QLinearAdd',
  'QLinearMul',
  'QLinearGlobalAveragePool',
  'QLinearAveragePool',
  'QLinearConcat',
  'QLinearSigmoid',
  'QLinearLeakyRelu',
  'QLinearSoftmax',
  'QLinearReduceMean',
  'QLinearWhere',
  'QAttention',
  'DynamicQuantizeLinear',
  // ORT fuses DynamicQuantizeLinear + MatMulInteger (+ scale) into these contrib ops
  'DynamicQuantizeMatMul',
  'MatMulIntegerToFloat',
]);

export type OpProfile = {
  integerKernelShare: number | null;
  topOps: { op: string; ms: number; share: number }[];
  totalKernelMs: number;
};

type TraceEvent = { cat?: unknown; name?: unknown; dur?: unknown; args?: { op_name?: unknown } };

export function summarizeOrtProfile(trace: unknown, top = 10): OpProfile {
  const events = (Array.isArray(trace) ? trace : []) as TraceEvent[];
  const nodes = events.filter((e) => e.cat === 'Node' && typeof e.args?.op_name === 'string' && typeof e.dur === 'number');
  // each node run is logged as fence_before / kernel_time / fence_after; only kernel_time is compute
  const kernels = nodes.some((e) => String(e.name).endsWith('_kernel_time')) ? nodes.filter((e) => String(e.name).endsWith('_kernel_time')) : nodes;
  const byOp = new Map<string, number>();
  for (const e of kernels) {
    const op = e.args?.op_name as string;
    byOp.set(op, (byOp.get(op) ?? 0) + (e.dur as number));
  }
  const totalUs = [...byOp.values()].reduce((a, b) => a + b, 0);
  if (totalUs <= 0) return { integerKernelShare: null, topOps: [], totalKernelMs: 0 };
  const intUs = [...byOp].filter(([op]) => INTEGER_OPS.has(op)).reduce((a, [, us]) => a + us, 0);
  const topOps = [...byOp]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([op, us]) => ({ op, ms: Math.round(us) / 1000, share: Math.round((us / totalUs) * 1e4) / 1e4 }));
  return { integerKernelShare: Math.round((intUs / totalUs) * 1e4) / 1e4, topOps, totalKernelMs: totalUs / 1000 };
}
