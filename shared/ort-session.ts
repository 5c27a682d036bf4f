/**
 * The onnxruntime session settings every EdgeFleet benchmark and evaluation uses. The agent's
 * benchmark worker and the control plane's central runtime check import this one function, so an
 * accuracy measured centrally is measured at the settings devices run: graph optimization `all` lets
 * onnxruntime fuse QDQ into its integer kernels (QLinearConv, QGemm...), and those kernels are
 * where CPUs differ.
 *
 * On a CPU whose u8×s8 kernels saturate (AVX2 without VNNI, see shared/kernels.ts) the session also
 * sets `session.x64quantprecision`: int8 weights outside ±64 run on onnxruntime's U8U8 kernels, which
 * do not saturate, so every recipe's model computes what PyTorch computed there (full 8-bit weights
 * more slowly). Without it, recipes with full 8-bit weights agreed with PyTorch on 87-98% of samples
 * on such CPUs. It is never set elsewhere: on VNNI CPUs onnxruntime would swap VNNI for U8U8 too.
 */
export const ORT_GRAPH_OPTIMIZATION_LEVEL = 'all' as const;

/** What the session settings depend on: whether this CPU's u8×s8 kernels saturate (shared/kernels.ts u8s8Saturates). */
export type KernelFacts = { u8s8Saturates: boolean };

export type OrtSessionSettings = {
  intraOpNumThreads: number;
  interOpNumThreads: number;
  executionMode: 'sequential';
  graphOptimizationLevel: typeof ORT_GRAPH_OPTIMIZATION_LEVEL;
  extra?: { session: { x64quantprecision: '1' } };
};

export function ortSessionOptions(threads: number, kernels: KernelFacts): OrtSessionSettings {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: ORT_GRAPH_OPTIMIZATION_LEVEL,
    ...(kernels.u8s8Saturates ? { extra: { session: { x64quantprecision: '1' as const } } } : {}),
  };
}
