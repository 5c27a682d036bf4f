import { z } from 'zod';
import { DeviceIdSchema, ModelIdSchema, ProfileIdSchema, RecipeIdSchema, RolloutIdSchema } from './ids.ts';
import { err, ok, type Result } from './result.ts';

/**
 * Chunk transfer, without I/O: the binary frame on `devices/{id}/xfer/data` and the bitmap of received chunks
 * a download persists so it can resume.
 *
 * Frame (big-endian): "EFXF" | u8 version=1 | u8 idLength | transferId (utf8) | u32 chunk index |
 * 32 bytes chunk sha256 | u32 payload length | payload.
 */
export const FRAME_MAGIC = 'EFXF';
export const FRAME_VERSION = 1;
export const DEFAULT_CHUNK_SIZE = 256 * 1024;
/** The largest chunk a transfer may use. */
export const MAX_CHUNK_SIZE = 8 * 1024 * 1024;
/**
 * The largest MQTT packet both brokers accept (embedded broker and the Mosquitto config's
 * `max_packet_size`): a maximal chunk, its frame header (at most 4+1+1+255+4+32+4 bytes), the topic
 * and MQTT's fixed and variable header, rounded up with room to spare.
 */
export const MAX_MQTT_PACKET_BYTES = MAX_CHUNK_SIZE + 4096;
/** The most chunks one `xfer/req` may ask for; the server refuses bigger windows. */
export const MAX_WINDOW = 64;

const MAGIC_BYTES = [0x45, 0x46, 0x58, 0x46];
const FIXED_BYTES = 4 + 1 + 1 + 4 + 32 + 4;

export type ChunkFrame = { transferId: string; index: number; sha256: string; payload: Uint8Array };
export type FrameResult = Result<ChunkFrame>;

export function encodeFrame(frame: ChunkFrame): Buffer {
  const { frame: out, payloadOffset } = allocFrame(frame.transferId, frame.index, frame.sha256, frame.payload.byteLength);
  out.set(frame.payload, payloadOffset);
  return out;
}

/**
 * A frame with its header written and room for `payloadLength` bytes at `payloadOffset`: the server reads the file
 * straight into it, so a chunk is copied once on its way out, not twice.
 */
export function allocFrame(transferId: string, index: number, sha256: string, payloadLength: number): { frame: Buffer; payloadOffset: number } {
  const id = Buffer.from(transferId, 'utf8');
  if (id.length < 1 || id.length > 255) throw new RangeError(`transferId must be 1..255 bytes, got ${id.length}`);
  if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) throw new RangeError(`chunk index ${index} is not a u32`);
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new RangeError('sha256 must be 64 lower-case hex digits');
  const out = Buffer.allocUnsafe(FIXED_BYTES + id.length + payloadLength);
  let o = 0;
  for (const b of MAGIC_BYTES) out[o++] = b;
  out[o++] = FRAME_VERSION;
  out[o++] = id.length;
  id.copy(out, o);
  o += id.length;
  out.writeUInt32BE(index, o);
  o += 4;
  out.write(sha256, o, 'hex');
  o += 32;
  out.writeUInt32BE(payloadLength, o);
  o += 4;
  return { frame: out, payloadOffset: o };
}

/** Parses a frame; the error says what was wrong (truncated, bad magic, length mismatch). `payload` is a view, not a copy. */
export function decodeFrame(bytes: Uint8Array): FrameResult {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 6) return err(`frame truncated: ${buf.length} bytes, no header`);
  if (!MAGIC_BYTES.every((b, i) => buf[i] === b)) return err(`not a chunk frame (magic ${buf.subarray(0, 4).toString('hex')})`);
  if (buf[4] !== FRAME_VERSION) return err(`unsupported frame version ${buf[4]}`);
  const idLen = buf[5]!;
  if (idLen === 0) return err('frame has an empty transferId');
  const headerLen = FIXED_BYTES + idLen;
  if (buf.length < headerLen) return err(`frame truncated: ${buf.length} bytes, header needs ${headerLen}`);
  let o = 6;
  const transferId = buf.toString('utf8', o, o + idLen);
  o += idLen;
  const index = buf.readUInt32BE(o);
  o += 4;
  const sha256 = buf.toString('hex', o, o + 32);
  o += 32;
  const len = buf.readUInt32BE(o);
  o += 4;
  if (buf.length - o !== len) return err(`frame payload is ${buf.length - o} bytes, header says ${len}`);
  return ok({ transferId, index, sha256, payload: buf.subarray(o) });
}

export function chunkCount(sizeBytes: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(sizeBytes / chunkSize));
}

/** Byte range [start, end) of chunk `index`. */
export function chunkRange(index: number, sizeBytes: number, chunkSize: number): { start: number; end: number } {
  const start = index * chunkSize;
  return { start, end: Math.min(sizeBytes, start + chunkSize) };
}

/** Which chunks a download holds; persisted as raw bytes (bit i of byte i>>3, LSB first). */
export class ChunkBitmap {
  readonly bytes: Uint8Array;
  private have = 0;

  constructor(
    readonly size: number,
    bytes?: Uint8Array,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`bitmap size ${size} must be a positive integer`);
    const n = Math.ceil(size / 8);
    this.bytes = new Uint8Array(n);
    if (bytes) {
      this.bytes.set(bytes.subarray(0, n));
      // bits past the end are noise from an older layout or a torn write: never trust them
      if (size % 8) this.bytes[n - 1]! &= (1 << size % 8) - 1;
      for (let i = 0; i < size; i++) if (this.has(i)) this.have++;
    }
  }

  /** A saved bitmap, or an error when it cannot belong to a download of `size` chunks. */
  static fromBytes(size: number, bytes: Uint8Array): Result<ChunkBitmap> {
    if (bytes.length !== Math.ceil(size / 8)) return err(`bitmap has ${bytes.length} bytes, ${size} chunks need ${Math.ceil(size / 8)}`);
    return ok(new ChunkBitmap(size, bytes));
  }

  has(i: number): boolean {
    return i >= 0 && i < this.size && (this.bytes[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  /** Marks chunk i; true when it was not held before. */
  set(i: number): boolean {
    if (i < 0 || i >= this.size || !Number.isInteger(i)) throw new RangeError(`chunk ${i} outside 0..${this.size - 1}`);
    if (this.has(i)) return false;
    this.bytes[i >> 3]! |= 1 << (i & 7);
    this.have++;
    return true;
  }

  clear(i: number): void {
    if (!this.has(i)) return;
    this.bytes[i >> 3]! &= ~(1 << (i & 7));
    this.have--;
  }

  get count(): number {
    return this.have;
  }

  get complete(): boolean {
    return this.have === this.size;
  }

  /** Up to `limit` missing chunk indexes in order, skipping those in `exclude` (already asked for). */
  missing(limit = Infinity, exclude?: ReadonlySet<number>): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.size && out.length < limit; i++) if (!this.has(i) && !exclude?.has(i)) out.push(i);
    return out;
  }
}

/** A model and its companions on the control plane's disk, as the registry or an operator hands them to `deliver`. */
export const DeliverySourceSchema = z
  .object({
    modelId: ModelIdSchema,
    version: z.number().int().min(1).max(1_000_000_000),
    profileId: ProfileIdSchema,
    recipeId: RecipeIdSchema,
    kind: z.enum(['int8', 'fp32']),
    modelPath: z.string().min(1).max(4096),
    centralAccuracy: z.number().min(0).max(1).nullable(),
    companions: z.array(z.object({ role: z.enum(['fp32-baseline', 'evalset', 'reference-predictions']), path: z.string().min(1).max(4096) }).strict()).max(8).default([]),
  })
  .strict();
export type DeliverySource = z.infer<typeof DeliverySourceSchema>;

/** `POST /deliveries`: push one source to one device (path-based for now: the paths are on the control plane's disk). */
export const DeliveryRequestSchema = z
  .object({
    deviceId: DeviceIdSchema,
    source: DeliverySourceSchema,
    rolloutId: RolloutIdSchema.nullable().default(null),
    chunkSize: z.number().int().min(1024).max(MAX_CHUNK_SIZE).optional(),
    ttlSeconds: z.number().int().min(60).max(30 * 24 * 3600).optional(),
    /** Overrides of the device profile's benchmark settings (e.g. shorter runs on a test bench). */
    benchmark: z.record(z.string().max(64), z.union([z.number(), z.boolean()])).refine((r) => Object.keys(r).length <= 32, 'at most 32 settings').optional(),
  })
  .strict();
export type DeliveryRequest = z.infer<typeof DeliveryRequestSchema>;
