import type { Recipe } from '../../shared/recipe.ts';

/** The five profile recipes as the trainer receives them (see DESIGN.md "Profiles and recipes"). */
const perTensor = (dtype: 'int8' | 'uint8', symmetric: boolean) => ({ dtype, symmetric, granularity: 'per-tensor' as const });
const weights = (granularity: 'per-channel' | 'per-tensor') => ({ dtype: 'int8' as const, symmetric: true as const, granularity, axis: 0 });
const base = { format: 'qdq' as const, opset: 13, quantizeResidualAdd: true, floatOps: [] as string[], keepFp32Fallback: false };

export const BENCH_RECIPES: Recipe[] = [
  { ...base, id: 'x86-64-vnni', activations: perTensor('uint8', false), weights: weights('per-channel'), reduceRange: false },
  { ...base, id: 'armv82-dotprod', activations: perTensor('int8', false), weights: weights('per-channel'), reduceRange: false },
  { ...base, id: 'iphone-class-cpu', activations: perTensor('int8', false), weights: weights('per-channel'), reduceRange: false, keepFp32Fallback: true },
  { ...base, id: 'jetson-trt-int8', activations: perTensor('int8', true), weights: weights('per-channel'), reduceRange: false },
  { ...base, id: 'generic-cpu', activations: perTensor('uint8', false), weights: weights('per-tensor'), reduceRange: true },
];
