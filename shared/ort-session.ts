/**
 * The onnxruntime session settings every EdgeFleet benchmark and evaluation uses. The agent's
 * benchmark worker and the control plane's central runtime check import this one object, so an
 * accuracy measured centrally is measured at the graph-optimization level devices run: `all` lets
 * onnxruntime fuse QDQ into its integer kernels (QLinearConv, QGemm...), and those kernels are
 * where CPUs differ (AVX2's saturating u8×s8 pair sums, for one).
 */
export const ORT_GRAPH_OPTIMIZATION_LEVEL = 'all' as const;

export function ortSessionOptions(threads: number): {
  intraOpNumThreads: number;
  interOpNumThreads: number;
  executionMode: 'sequential';
  graphOptimizationLevel: typeof ORT_GRAPH_OPTIMIZATION_LEVEL;
} {
  return { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: ORT_GRAPH_OPTIMIZATION_LEVEL };
}
