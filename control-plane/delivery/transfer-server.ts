import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { XferRequest } from '../../shared/messages.ts';
import { BoundedMap } from '../../shared/bounded-map.ts';
import { ThrottledLog } from '../../shared/throttled-log.ts';
import { deviceTopic } from '../../shared/topics.ts';
import { DEFAULT_CHUNK_SIZE, MAX_WINDOW, chunkRange, encodeFrame } from '../../shared/transfer.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { DeliveryStore, TransferRow } from './delivery-store.ts';
import { sha256Stream } from '../../shared/hash.ts';
import { MsgIdDedup } from '../../shared/dedup.ts';

export type RegisteredTransfer = { transferId: string; sizeBytes: number; chunkSize: number; sha256: string; chunkSha256: string[] };

/** Test seam: sees (and may replace) each encoded frame before it is published. */
export type FrameFilter = (f: { deviceId: string; transferId: string; index: number; frame: Buffer }) => Buffer;

export type ServedStats = { requests: number; chunks: number; bytes: number; refused: number };

export type TransferServerDeps = {
  store: DeliveryStore;
  publish: (topic: string, payload: Buffer) => Promise<void>;
  metrics: Metrics;
  log: Logger;
  now: () => number;
  frameFilter?: FrameFilter | undefined;
  /** Chunks being read or published at once, across all devices: bounds memory (default 64, i.e. 16 MiB of 256 KiB chunks). */
  maxChunksInFlight?: number;
};

const SERVED_CHUNKS = 'edgefleet_delivery_chunks_served_total';
const SERVED_BYTES = 'edgefleet_delivery_bytes_served_total';
const REFUSED = 'edgefleet_delivery_requests_refused_total';
/** Device x transfer pairs tracked for stats and re-request counting: beyond this the oldest are forgotten. */
const MAX_TRACKED = 20_000;

/** Transfer ids name their content: the same bytes in the same chunking are one transfer, wherever the file lies. */
export const transferIdFor = (sha256: string, chunkSize: number): string => `${sha256.slice(0, 32)}-${chunkSize}`;

export class TransferError extends Error {
  override readonly name = 'TransferError';
}

/** Hashes a file once (whole-file and per-chunk sha256) and serves its chunks to the devices it was offered to. */
export class TransferServer {
  /** Per device and offered transfer; bounded, and only for transfers the device was offered (refusals are counted in metrics). */
  private readonly stats = new BoundedMap<string, ServedStats>(MAX_TRACKED);
  /** Chunk indexes served per device and transfer: serving one again is a re-request. */
  private readonly servedIndexes = new BoundedMap<string, Set<number>>(MAX_TRACKED);
  private readonly refusals: ThrottledLog;
  /** Request ids seen lately: a QoS 1 re-delivery of a request is not served twice. */
  private readonly seen = new MsgIdDedup(10_000);
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly maxInFlight: number;

  constructor(private readonly d: TransferServerDeps) {
    this.maxInFlight = d.maxChunksInFlight ?? 64;
    this.refusals = new ThrottledLog(d.log, { now: d.now });
  }

  /** Idempotent by content and chunk size; a file already registered with the same size and mtime is not hashed again. */
  async register(filePath: string, chunkSize = DEFAULT_CHUNK_SIZE): Promise<RegisteredTransfer> {
    if (!Number.isInteger(chunkSize) || chunkSize < 1024 || chunkSize > 8 * 1024 * 1024) throw new TransferError(`chunkSize ${chunkSize} must be 1 KiB..8 MiB`);
    const path = resolve(filePath);
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      throw new TransferError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    if (!st.isFile()) throw new TransferError(`${path}: not a regular file`);
    if (st.size === 0) throw new TransferError(`${path}: empty file, nothing to transfer`);
    const known = this.d.store.transferByFile(path, st.size, st.mtimeMs, chunkSize);
    if (known) return view(known);
    const { sha256, chunkSha256 } = await hashFile(path, st.size, chunkSize);
    const row = this.d.store.upsertTransfer({
      id: transferIdFor(sha256, chunkSize),
      path,
      sizeBytes: st.size,
      mtimeMs: st.mtimeMs,
      chunkSize,
      sha256,
      chunkSha256,
      createdAt: this.d.now(),
    });
    this.d.log.info('transfer registered', { transferId: row.id, path, sizeBytes: row.sizeBytes, chunks: row.chunkSha256.length });
    return view(row);
  }

  /** Device x transfer pairs held in memory (bounded by MAX_TRACKED; tests and the flood bench read it). */
  get trackedPairs(): number {
    return this.stats.size + this.servedIndexes.size;
  }

  statsFor(deviceId: string, transferId: string): ServedStats {
    return { ...(this.stats.get(`${deviceId}\0${transferId}`) ?? { requests: 0, chunks: 0, bytes: 0, refused: 0 }) };
  }

  /** Answers one `xfer/req`: each requested chunk is read and published as one frame carrying its registered hash, which the agent checks. */
  async handleRequest(deviceId: string, req: XferRequest): Promise<void> {
    if (!this.seen.firstTime(req.msgId)) {
      this.d.metrics.inc('edgefleet_mqtt_messages_replayed_total', 'MQTT messages dropped as a msgId seen before (QoS 1 re-delivery or replay), by channel', { channel: 'xfer/req' });
      return;
    }
    let st: ServedStats | null = null;
    const refuse = (reason: string, fields: Record<string, unknown> = {}): void => {
      if (st) st.refused++;
      this.d.metrics.inc(REFUSED, 'Transfer requests refused, by reason', { reason });
      this.refusals.warn('transfer request refused', deviceId, reason, { deviceId, transferId: req.transferId, reason, ...fields });
    };
    const t = this.d.store.transfer(req.transferId);
    if (!t) return refuse('unknown-transfer');
    if (!this.d.store.isOffered(deviceId, t.id)) return refuse('not-offered');
    st = this.stats.getOrSet(`${deviceId}\0${t.id}`, () => ({ requests: 0, chunks: 0, bytes: 0, refused: 0 }));
    if (req.chunks.length > MAX_WINDOW) return refuse('window-too-large', { chunks: req.chunks.length, max: MAX_WINDOW });
    const n = t.chunkSha256.length;
    const bad = req.chunks.find((i) => i >= n);
    if (bad !== undefined) return refuse('chunk-out-of-range', { chunk: bad, chunks: n });
    st.requests++;
    const indexes = [...new Set(req.chunks)];
    let fh;
    try {
      fh = await open(t.path, 'r');
      // the agent checks every chunk against the signed manifest; here a size/mtime check catches a replaced file cheaply
      const now = await fh.stat();
      if (now.size !== t.sizeBytes || now.mtimeMs !== t.mtimeMs) {
        await fh.close();
        this.d.log.error('transfer source changed since it was registered; register it again', { deviceId, transferId: t.id, path: t.path });
        return refuse('source-changed');
      }
    } catch (e) {
      this.d.log.error('transfer source unreadable', { deviceId, transferId: t.id, path: t.path, error: String(e) });
      return;
    }
    const topic = deviceTopic(deviceId, 'xfer/data');
    try {
      const outcomes = await Promise.allSettled(
        indexes.map(async (index) => {
          await this.acquire();
          try {
            const { start, end } = chunkRange(index, t.sizeBytes, t.chunkSize);
            const buf = Buffer.allocUnsafe(end - start);
            const { bytesRead } = await fh.read(buf, 0, buf.length, start);
            const payload = buf.subarray(0, bytesRead);
            const expected = t.chunkSha256[index]!;
            let frame = encodeFrame({ transferId: t.id, index, sha256: expected, payload });
            if (this.d.frameFilter) frame = this.d.frameFilter({ deviceId, transferId: t.id, index, frame });
            await this.d.publish(topic, frame);
            st.chunks++;
            st.bytes += payload.length;
            const seen = this.servedIndexes.getOrSet(`${deviceId}/${t.id}`, () => new Set());
            if (seen.has(index)) this.d.metrics.inc('edgefleet_delivery_chunks_rerequested_total', 'Transfer chunks a device asked for again (bad hash, lost, resumed)');
            seen.add(index);
            this.d.metrics.inc(SERVED_CHUNKS, 'Transfer chunks published');
            this.d.metrics.inc(SERVED_BYTES, 'Transfer payload bytes published', {}, payload.length);
          } finally {
            this.release();
          }
        }),
      );
      const failed = outcomes.find((o) => o.status === 'rejected');
      if (failed) this.d.log.warn('transfer publish failed; the device will ask again', { deviceId, transferId: t.id, error: String(failed.reason) });
    } finally {
      await fh.close().catch(() => {});
    }
    this.d.log.debug('transfer window served', { deviceId, transferId: t.id, chunks: indexes.length, first: indexes[0] });
  }

  private async acquire(): Promise<void> {
    if (this.inFlight < this.maxInFlight) {
      this.inFlight++;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }
}

const view = (t: TransferRow): RegisteredTransfer => ({ transferId: t.id, sizeBytes: t.sizeBytes, chunkSize: t.chunkSize, sha256: t.sha256, chunkSha256: t.chunkSha256 });

/** The file's hash and its chunk hashes, over the `size` bytes `stat` saw. */
async function hashFile(path: string, size: number, chunkSize: number): Promise<{ sha256: string; chunkSha256: string[] }> {
  const h = await sha256Stream(createReadStream(path, { start: 0, end: size - 1, highWaterMark: chunkSize }), chunkSize);
  if (h.size !== size) throw new TransferError(`${path}: file shrank while hashing`);
  return { sha256: h.sha256, chunkSha256: h.chunkSha256 };
}
