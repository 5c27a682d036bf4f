import { z } from 'zod';

/** How a profile's int8 model is quantized. Consumed by the trainer (as JSON) and the agent. */
export const QuantDtype = z.enum(['int8', 'uint8']);

export const RecipeSchema = z
  .object({
    id: z.string().max(64).regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes'),
    /** QDQ: QuantizeLinear/DequantizeLinear pairs around float ops; runtimes fuse them into integer kernels. */
    format: z.literal('qdq'),
    opset: z.number().int().min(13).max(21),
    activations: z.object({
      dtype: QuantDtype,
      symmetric: z.boolean(),
      granularity: z.literal('per-tensor'),
    }),
    weights: z.object({
      dtype: z.literal('int8'),
      symmetric: z.literal(true),
      granularity: z.enum(['per-channel', 'per-tensor']),
      /** Output-channel axis for per-channel scales (0 for Conv and Gemm weights). */
      axis: z.number().int().min(0).max(8).default(0),
    }),
    /** onnxruntime's reduce_range (7-bit weights) for CPUs without VNNI/dotprod; off for the modern targets. */
    reduceRange: z.boolean().default(false),
    /** Put Q/DQ on both inputs of residual Add nodes (TensorRT needs this to keep Add in int8). */
    quantizeResidualAdd: z.boolean().default(true),
    /** Op types left in float, e.g. ["Softmax"]; the trainer leaves these modules unquantized. */
    floatOps: z.array(z.string().min(1).max(64)).max(64).default([]),
    /** Ship and benchmark the fp32 student alongside as a fallback (iPhone-class). */
    keepFp32Fallback: z.boolean().default(false),
    /** Keep the k layers with the lowest SQNR in the trainer's diagnostics in float (tuning's mixed-precision variants). */
    keepFloatLayers: z.number().int().min(0).max(16).optional(),
  })
  .strict();

export type Recipe = z.infer<typeof RecipeSchema>;
