import { err, ok, type Result } from './result.ts';
/**
 * The eval-set file the trainer ships with each model, parsed and encoded without I/O.
 * Little-endian: "EFEV", u32 version=1, u32 count, u32 channels, u32 height, u32 width,
 * u32 numClasses, count u8 labels, then count*C*H*W u8 pixels (NCHW). Model input = pixels/255.
 */

export const EVALSET_MAGIC = 'EFEV';
export const EVALSET_VERSION = 1;
export const EVALSET_HEADER_BYTES = 28;

export type EvalSet = {
  count: number;
  channels: number;
  height: number;
  width: number;
  numClasses: number;
  labels: Uint8Array;
  /** count*C*H*W bytes, NCHW. */
  pixels: Uint8Array;
};

export type EvalSetResult = Result<EvalSet>;

export function parseEvalSet(bytes: Uint8Array): EvalSetResult {
  if (bytes.byteLength < EVALSET_HEADER_BYTES) return err('eval set truncated: no header');
  const magic = String.fromCharCode(bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!);
  if (magic !== EVALSET_MAGIC) return err(`not an eval set (magic ${JSON.stringify(magic)})`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(4, true);
  if (version !== EVALSET_VERSION) return err(`unsupported eval-set version ${version}`);
  const count = dv.getUint32(8, true);
  const channels = dv.getUint32(12, true);
  const height = dv.getUint32(16, true);
  const width = dv.getUint32(20, true);
  const numClasses = dv.getUint32(24, true);
  if (channels < 1 || height < 1 || width < 1) return err('eval set has an empty image shape');
  if (numClasses < 1 || numClasses > 256) return err(`numClasses ${numClasses} not in 1..256`);
  const pixelCount = count * channels * height * width;
  const expected = EVALSET_HEADER_BYTES + count + pixelCount;
  if (!Number.isSafeInteger(expected) || bytes.byteLength !== expected) {
    return err(`eval set has ${bytes.byteLength} bytes, header says ${expected}`);
  }
  const labels = bytes.subarray(EVALSET_HEADER_BYTES, EVALSET_HEADER_BYTES + count);
  for (let i = 0; i < count; i++) {
    if (labels[i]! >= numClasses) return err(`label ${labels[i]} at ${i} >= numClasses ${numClasses}`);
  }
  const pixels = bytes.subarray(EVALSET_HEADER_BYTES + count, expected);
  return ok({ count, channels, height, width, numClasses, labels, pixels });
}

export function encodeEvalSet(set: EvalSet): Uint8Array {
  const { count, channels, height, width, numClasses, labels, pixels } = set;
  if (labels.length !== count) throw new RangeError(`labels: ${labels.length} for count ${count}`);
  if (pixels.length !== count * channels * height * width) throw new RangeError('pixels: length does not match count*C*H*W');
  const out = new Uint8Array(EVALSET_HEADER_BYTES + count + pixels.length);
  out.set([0x45, 0x46, 0x45, 0x56], 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(4, EVALSET_VERSION, true);
  dv.setUint32(8, count, true);
  dv.setUint32(12, channels, true);
  dv.setUint32(16, height, true);
  dv.setUint32(20, width, true);
  dv.setUint32(24, numClasses, true);
  out.set(labels, EVALSET_HEADER_BYTES);
  out.set(pixels, EVALSET_HEADER_BYTES + count);
  return out;
}

/** Model input for samples [start, start+n): float32 NCHW, pixels / 255. */
export function evalSetBatch(set: EvalSet, start: number, n: number): Float32Array {
  const per = set.channels * set.height * set.width;
  const end = Math.min(set.count, start + n);
  const out = new Float32Array((end - start) * per);
  const src = set.pixels.subarray(start * per, end * per);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! / 255;
  return out;
}

/** Share of positions where two top-1 prediction arrays agree (1 for two empty arrays). */
export function agreement(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new RangeError(`prediction arrays differ in length: ${a.length} vs ${b.length}`);
  if (a.length === 0) return 1;
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

/** Row-wise argmax of a [rows x cols] float array. */
export function argmaxRows(logits: Float32Array, cols: number): Uint8Array {
  const rows = Math.floor(logits.length / cols);
  const out = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bestV = logits[r * cols]!;
    for (let c = 1; c < cols; c++) {
      const v = logits[r * cols + c]!;
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}
