import type { BenchmarkSettings } from '../../shared/profile.ts';

/** Labelled images for accuracy (a structural subset of shared/evalset.ts `EvalSet`, so `parseEvalSet(bytes).data` fits): `pixels` is count × channels × height × width bytes (NCHW); the model sees pixels / 255 as float32. */
export type EvalSet = {
  count: number;
  channels: number;
  height: number;
  width: number;
  labels: Uint8Array;
  pixels: Uint8Array;
};

/** What the worker is asked to do (structured-cloned into it). */
export type WorkerRequest = {
  modelPath: string;
  settings: BenchmarkSettings;
  evalSet: EvalSet | null;
  /** Top-1 predictions of a reference model (the fp32 teacher or student) on the same eval set, for agreement. */
  referencePredictions: Uint8Array | null;
  /** For random input: the input shape to use where the model's own shape is symbolic (batch is always 1). */
  inputShape: number[] | null;
  /** Folder for ONNX Runtime's profile file. */
  profileDir: string;
};

export type WorkerResult = {
  threads: number;
  sessionCreateMs: number;
  latencyMs: { p50: number; p90: number; p99: number; mean: number; min: number; max: number; count: number };
  throughputPerSecond: number;
  throughputBatchSize: number;
  peakRssBytes: number;
  fileSizeBytes: number;
  accuracy: number | null;
  agreement: number | null;
  evaluated: number;
  integerKernelShare: number | null;
  topOps: { op: string; ms: number; share: number }[];
};

export type Phase = 'load' | 'warmup' | 'latency' | 'throughput' | 'profile';

export type WorkerMessage =
  | { type: 'progress'; phase: Phase; queries: number }
  | { type: 'result'; result: WorkerResult }
  | { type: 'error'; message: string };

export type ControlMessage = { type: 'stop' };
