import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { XferRequest } from '../../shared/messages.ts';
import { BoundedMap } from '../../shared/bounded-map.ts';
import { ThrottledLog } from '../../shared/throttled-log.ts';
import { deviceTopic, transferDataTopic } from '../../shared/topics.ts';
import { DEFAULT_CHUNK_SIZE, MAX_WINDOW, allocFrame, chunkRange } from '../../shared/transfer.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { DeliveryStore, TransferRow } from './delivery-store.ts';
import { FanoutWave } from './fanout-wave.ts';
import { FrameCache } from './frame-cache.ts';
import { sha256Stream } from '../../shared/hash.ts';
import { MsgIdDedup } from '../../shared/dedup.ts';

export type RegisteredTransfer = { transferId: string; sizeBytes: number; chunkSize: number; sha256: string; chunkSha256: string[] };

/** Test seam: sees (and may replace) each encoded frame before it is published; `deviceId` is null on the shared fan-out topic. */
export type FrameFilter = (f: { deviceId: string | null; transferId: string; index: number; frame: Buffer }) => Buffer;

export type ServedStats = { requests: number; chunks: number; bytes: number; refused: number };
/** What the control plane published for one transfer (or all): frames to one device, and frames once on the shared topic. */
export type PublishedStats = {
  unicastChunks: number;
  unicastBytes: number;
  fanoutChunks: number;
  fanoutBytes: number;
  waves: number;
  /** Chunks read from the registered file (frame cache misses; concurrent asks for one chunk share a read). */
  chunkReads: number;
};

export type TransferServerDeps = {
  store: DeliveryStore;
  publish: (topic: string, payload: Buffer) => Promise<void>;
  metrics: Metrics;
  log: Logger;
  now: () => number;
  frameFilter?: FrameFilter | undefined;
  /** Chunks being read or published at once, across all devices: bounds memory (default 64, i.e. 16 MiB of 256 KiB chunks). */
  maxChunksInFlight?: number;
  /** Publish fresh chunks once on `transfers/{id}/data` for agents that ask with `fanout` (default true). */
  fanout?: boolean;
  /** A wave ends after this long without a fan-out ask; the next ask starts a new one (default 30 s). */
  waveIdleMs?: number;
  /**
   * A new wave holds its first publishes until every device with an open offer has joined, or this long (default
   * 1 s, below the agents' request timeout): devices of one wave get their deploy within milliseconds of each other
   * but start asking over a second or so on a loaded host, and a device that joins after a chunk went out gets that
   * chunk on its own topic.
   */
  gatherMs?: number;
  /** Encoded frames kept for the next device that asks (default 32 MiB): a wave reads and frames each chunk once. */
  frameCacheBytes?: number;
};

/** The start of a wave: publishes wait until the devices offered the transfer have joined (or the gather time is up). */
type Gather = { expected: Set<string>; open: Promise<void>; release: () => void };

const SERVED_CHUNKS = 'edgefleet_delivery_chunks_served_total';
const SERVED_BYTES = 'edgefleet_delivery_bytes_served_total';
const REFUSED = 'edgefleet_delivery_requests_refused_total';
const FANOUT_CHUNKS = 'edgefleet_delivery_fanout_chunks_published_total';
const FANOUT_BYTES = 'edgefleet_delivery_fanout_bytes_published_total';
const WAVES = 'edgefleet_delivery_fanout_waves_total';
const CHUNK_READS = 'edgefleet_delivery_chunk_reads_total';
/** Device x transfer pairs tracked for stats and re-request counting: beyond this the oldest are forgotten. */
const MAX_TRACKED = 20_000;
/**
 * A chunk queued for a device longer than this is served again when asked for again (its publish may have been lost
 * with a connection); younger, the ask is a repeat of one still waiting its turn and is skipped.
 */
const QUEUED_SKIP_MS = 30_000;
/** Transfers with published counters or a wave kept in memory. */
const MAX_TRANSFERS_TRACKED = 1000;

/** Transfer ids name their content: the same bytes in the same chunking are one transfer, wherever the file lies. */
export const transferIdFor = (sha256: string, chunkSize: number): string => `${sha256.slice(0, 32)}-${chunkSize}`;

export class TransferError extends Error {
  override readonly name = 'TransferError';
}

const noStats = (): PublishedStats => ({ unicastChunks: 0, unicastBytes: 0, fanoutChunks: 0, fanoutBytes: 0, waves: 0, chunkReads: 0 });

/**
 * Hashes a file once (whole-file and per-chunk sha256) and serves its chunks to the devices it was offered to: to one
 * device on `devices/{id}/xfer/data`, or once per wave to every listening device on `transfers/{id}/data`.
 */
export class TransferServer {
  /** Per device and offered transfer; bounded, and only for transfers the device was offered (refusals are counted in metrics). */
  private readonly stats = new BoundedMap<string, ServedStats>(MAX_TRACKED);
  /** Chunk indexes served per device and transfer: serving one again is a re-request. */
  private readonly servedIndexes = new BoundedMap<string, Set<number>>(MAX_TRACKED);
  /** Per device and transfer, the chunks waiting for (or in) their publish to that device, with when they were queued. */
  private readonly queued = new BoundedMap<string, Map<number, number>>(MAX_TRACKED);
  private readonly published = new BoundedMap<string, PublishedStats>(MAX_TRANSFERS_TRACKED);
  private readonly totals = noStats();
  private readonly waves = new BoundedMap<string, FanoutWave>(MAX_TRANSFERS_TRACKED);
  private readonly gathers = new Map<FanoutWave, Gather>();
  /** Transfer rows change only through `register`: no SQLite read and JSON parse of the hash list per request. */
  private readonly rows = new BoundedMap<string, TransferRow>(MAX_TRANSFERS_TRACKED);
  private readonly cache: FrameCache;
  /** Frames being read, by `transferId\0index`: one read however many requests want the frame meanwhile. */
  private readonly loading = new Map<string, Promise<Buffer>>();
  private readonly refusals: ThrottledLog;
  /** Request ids seen lately: a QoS 1 re-delivery of a request is not served twice. */
  private readonly seen = new MsgIdDedup(10_000);
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly maxInFlight: number;
  /** Shared-topic publishing on or off (the delivery bench compares both on one control plane). */
  fanout: boolean;
  private readonly waveIdleMs: number;
  private readonly gatherMs: number;

  constructor(private readonly d: TransferServerDeps) {
    this.maxInFlight = d.maxChunksInFlight ?? 64;
    this.refusals = new ThrottledLog(d.log, { now: d.now });
    this.fanout = d.fanout ?? true;
    this.waveIdleMs = d.waveIdleMs ?? 30_000;
    this.gatherMs = d.gatherMs ?? 1000;
    this.cache = new FrameCache(d.frameCacheBytes ?? 32 * 1024 * 1024);
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
    if (known) {
      this.remember(known);
      return view(known);
    }
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
    this.remember(row);
    this.d.log.info('transfer registered', { transferId: row.id, path, sizeBytes: row.sizeBytes, chunks: row.chunkSha256.length });
    return view(row);
  }

  /** Device x transfer pairs held in memory (bounded by MAX_TRACKED; tests and the flood bench read it). */
  get trackedPairs(): number {
    return this.stats.size + this.servedIndexes.size + this.queued.size;
  }

  statsFor(deviceId: string, transferId: string): ServedStats {
    return { ...(this.stats.get(`${deviceId}\0${transferId}`) ?? { requests: 0, chunks: 0, bytes: 0, refused: 0 }) };
  }

  /** Frames and payload bytes published, per transfer or (no id) in total since this server started. */
  publishedStats(transferId?: string): PublishedStats {
    return { ...(transferId === undefined ? this.totals : (this.published.get(transferId) ?? noStats())) };
  }

  /** A device was offered the transfer: a wave still gathering waits for it too (deliveries of one wave go out together). */
  noteOffer(transferId: string, deviceId: string): void {
    const w = this.waves.get(transferId);
    if (w && !w.hasDevice(deviceId)) this.gathers.get(w)?.expected.add(deviceId);
  }

  /** The transfer is over (no open offer): its wave is forgotten, so a later delivery of the same bytes starts a new one. */
  endTransfer(transferId: string): void {
    const w = this.waves.get(transferId);
    if (w) this.openGather(w);
    this.waves.delete(transferId);
    this.cache.dropTransfer(transferId);
  }

  /** A (re)registered row: a new path or mtime makes the frames cached from the old file stale. */
  private remember(row: TransferRow): void {
    const old = this.rows.get(row.id);
    if (old && (old.path !== row.path || old.mtimeMs !== row.mtimeMs)) this.cache.dropTransfer(row.id);
    this.rows.set(row.id, row);
  }

  private transfer(id: string): TransferRow | null {
    const cached = this.rows.get(id);
    if (cached) return cached;
    const row = this.d.store.transfer(id);
    if (row) this.rows.set(id, row);
    return row;
  }

  /**
   * The frame from the cache, or read once however many requests want it meanwhile: devices of a wave (or unicast
   * devices in step) ask for the same chunk at about the same time, and each read was a file open, a 256 KiB buffer and
   * its garbage (20 devices in step: up to 20 reads of every chunk before the first reached the cache).
   */
  private frame(source: ChunkSource, index: number): Promise<Buffer> {
    const id = source.t.id;
    const hit = this.cache.get(id, index);
    if (hit) return Promise.resolve(hit);
    const k = `${id}\0${index}`;
    let loading = this.loading.get(k);
    if (!loading) {
      this.count(id).chunkReads++;
      this.totals.chunkReads++;
      this.d.metrics.inc(CHUNK_READS, 'Transfer chunks read from the registered file (frame cache misses)');
      loading = source
        .frame(index)
        // a registration that changed meanwhile dropped this transfer's frames: the old file's frame is not cached
        .then((f) => (this.rows.get(id) === source.t ? this.cache.put(id, index, f) : f))
        .finally(() => this.loading.delete(k));
      this.loading.set(k, loading);
    }
    return loading;
  }

  /**
   * Answers one `xfer/req`. Without `fanout` (or without an open offer), each requested chunk goes to the asking device
   * alone. With it, chunks no one asked for yet in this wave are published once on the shared topic, and chunks
   * published before the device joined go to it alone (late joiners, resumes). Every frame carries the chunk's
   * registered hash, which the agent checks against its signed manifest.
   */
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
    const t = this.transfer(req.transferId);
    if (!t) return refuse('unknown-transfer');
    const offer = this.d.store.offerState(deviceId, t.id);
    if (offer === null) return refuse('not-offered');
    st = this.stats.getOrSet(`${deviceId}\0${t.id}`, () => ({ requests: 0, chunks: 0, bytes: 0, refused: 0 }));
    if (req.chunks.length > MAX_WINDOW) return refuse('window-too-large', { chunks: req.chunks.length, max: MAX_WINDOW });
    const n = t.chunkSha256.length;
    const bad = req.chunks.find((i) => i >= n);
    if (bad !== undefined) return refuse('chunk-out-of-range', { chunk: bad, chunks: n });
    st.requests++;
    const indexes = [...new Set(req.chunks)];
    let unicast = indexes;
    let broadcast: number[] = [];
    let wave: FanoutWave | null = null;
    // a closed offer (the install moved past downloading) still pulls on its own topic: the shared one is revoked
    if (req.fanout && this.fanout && offer === 'open') {
      const now = this.d.now();
      wave = this.wave(t.id, now);
      const plan = wave.plan(deviceId, indexes, req.fanout, now);
      unicast = plan.unicast;
      broadcast = plan.broadcast;
      const g = this.gathers.get(wave);
      if (g) {
        g.expected.delete(deviceId);
        if (!g.expected.size) this.openGather(wave);
      }
    }
    const gate = wave ? this.gathers.get(wave)?.open : undefined;
    const served = st;
    // an ask for a chunk still queued for this device (its agent timed out while the answer waited its turn) adds nothing
    const pairKey = `${deviceId}\0${t.id}`;
    const queued = this.queued.getOrSet(pairKey, () => new Map());
    const queuedAt = this.d.now();
    const repeats = unicast.filter((i) => queuedAt - (queued.get(i) ?? -Infinity) < QUEUED_SKIP_MS);
    if (repeats.length) {
      unicast = unicast.filter((i) => !repeats.includes(i));
      this.d.metrics.inc('edgefleet_delivery_repeat_asks_skipped_total', 'Chunks asked for again while still queued for the same device (not sent twice)', {}, repeats.length);
    }
    for (const i of unicast) queued.set(i, queuedAt);
    const source = new ChunkSource(t);
    try {
      const jobs = [
        ...broadcast.map((index) => ({ gated: true, run: () => this.publishShared(source, wave!, index) })),
        ...unicast.map((index) => ({
          gated: false,
          // out of the queue right before its publish: an ask read after that may follow a lost or corrupt copy
          run: () => this.publishToDevice(source, deviceId, index, served, () => queued.get(index) === queuedAt && queued.delete(index)),
        })),
      ];
      const outcomes = await Promise.allSettled(
        jobs.map(async ({ gated, run }) => {
          if (gated && gate) await gate;
          await this.acquire();
          try {
            await run();
          } finally {
            this.release();
          }
        }),
      );
      const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed) {
        if (failed.reason instanceof SourceChanged) {
          this.d.log.error('transfer source changed since it was registered; register it again', { deviceId, transferId: t.id, path: t.path, error: failed.reason.message });
          refuse('source-changed');
        } else this.d.log.warn('transfer publish failed; the device will ask again', { deviceId, transferId: t.id, error: String(failed.reason) });
      }
    } finally {
      await source.close();
    }
    this.d.log.debug('transfer window served', { deviceId, transferId: t.id, unicast: unicast.length, fanout: broadcast.length, first: indexes[0] });
  }

  private wave(transferId: string, now: number): FanoutWave {
    const w = this.waves.get(transferId);
    if (w && now - w.lastActivity <= this.waveIdleMs) return w;
    if (w) this.openGather(w);
    const fresh = new FanoutWave(transferId, now);
    this.waves.set(transferId, fresh);
    let release!: () => void;
    const open = new Promise<void>((r) => (release = r));
    this.gathers.set(fresh, { expected: new Set(this.d.store.openOfferDevices(transferId)), open, release });
    const timer = setTimeout(() => this.openGather(fresh), this.gatherMs);
    timer.unref();
    void open.then(() => clearTimeout(timer));
    this.count(transferId).waves++;
    this.totals.waves++;
    this.d.metrics.inc(WAVES, 'Fan-out waves started (a wave publishes each chunk of a transfer once)');
    return fresh;
  }

  private openGather(w: FanoutWave): void {
    const g = this.gathers.get(w);
    if (!g) return;
    this.gathers.delete(w);
    if (g.expected.size) this.d.log.info('fan-out wave starts without every offered device', { transferId: w.transferId, joined: w.devices, missing: g.expected.size });
    g.release();
  }

  private count(transferId: string): PublishedStats {
    return this.published.getOrSet(transferId, noStats);
  }

  private async publishToDevice(source: ChunkSource, deviceId: string, index: number, st: ServedStats, dequeue: () => void): Promise<void> {
    const t = source.t;
    let frame: Buffer;
    try {
      frame = await this.frame(source, index);
    } finally {
      dequeue();
    }
    const { start, end } = chunkRange(index, t.sizeBytes, t.chunkSize);
    const bytes = end - start;
    if (this.d.frameFilter) frame = this.d.frameFilter({ deviceId, transferId: t.id, index, frame });
    await this.d.publish(deviceTopic(deviceId, 'xfer/data'), frame);
    st.chunks++;
    st.bytes += bytes;
    const p = this.count(t.id);
    p.unicastChunks++;
    p.unicastBytes += bytes;
    this.totals.unicastChunks++;
    this.totals.unicastBytes += bytes;
    const seen = this.servedIndexes.getOrSet(`${deviceId}\0${t.id}`, () => new Set());
    if (seen.has(index)) this.d.metrics.inc('edgefleet_delivery_chunks_rerequested_total', 'Transfer chunks a device asked for again (bad hash, lost, resumed)');
    seen.add(index);
    this.d.metrics.inc(SERVED_CHUNKS, 'Transfer chunks published to one device');
    this.d.metrics.inc(SERVED_BYTES, 'Transfer payload bytes published to one device', {}, bytes);
  }

  private async publishShared(source: ChunkSource, wave: FanoutWave, index: number): Promise<void> {
    const t = source.t;
    try {
      let frame = await this.frame(source, index);
      if (this.d.frameFilter) frame = this.d.frameFilter({ deviceId: null, transferId: t.id, index, frame });
      const { start, end } = chunkRange(index, t.sizeBytes, t.chunkSize);
      // before the publish: an ask read after this point is from a device that will receive it (see fanout-wave.ts)
      wave.publishing(index);
      await this.d.publish(transferDataTopic(t.id), frame);
      const p = this.count(t.id);
      p.fanoutChunks++;
      p.fanoutBytes += end - start;
      this.totals.fanoutChunks++;
      this.totals.fanoutBytes += end - start;
      this.d.metrics.inc(FANOUT_CHUNKS, 'Transfer chunks published once on the shared per-transfer topic');
      this.d.metrics.inc(FANOUT_BYTES, 'Transfer payload bytes published on the shared per-transfer topic', {}, end - start);
    } catch (e) {
      wave.failed(index);
      throw e;
    }
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

class SourceChanged extends Error {
  override readonly name = 'SourceChanged';
}

/** The registered file, opened on first use by one request and checked (size, mtime) against the registration. */
class ChunkSource {
  private fh: Promise<FileHandle> | null = null;

  constructor(readonly t: TransferRow) {}

  private handle(): Promise<FileHandle> {
    this.fh ??= (async () => {
      const fh = await open(this.t.path, 'r');
      // the agent checks every chunk against the signed manifest; here a size/mtime check catches a replaced file cheaply
      const now = await fh.stat().catch(async (e: unknown) => {
        await fh.close();
        throw e;
      });
      if (now.size !== this.t.sizeBytes || now.mtimeMs !== this.t.mtimeMs) {
        await fh.close();
        throw new SourceChanged(`${this.t.path} changed since it was registered`);
      }
      return fh;
    })();
    return this.fh;
  }

  async frame(index: number): Promise<Buffer> {
    const fh = await this.handle();
    const { start, end } = chunkRange(index, this.t.sizeBytes, this.t.chunkSize);
    const { frame, payloadOffset } = allocFrame(this.t.id, index, this.t.chunkSha256[index]!, end - start);
    const { bytesRead } = await fh.read(frame, payloadOffset, end - start, start);
    if (bytesRead !== end - start) throw new SourceChanged(`${this.t.path} is shorter than registered`);
    return frame;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    if (fh) await fh.then((h) => h.close()).catch(() => {});
  }
}

const view = (t: TransferRow): RegisteredTransfer => ({ transferId: t.id, sizeBytes: t.sizeBytes, chunkSize: t.chunkSize, sha256: t.sha256, chunkSha256: t.chunkSha256 });

/** The file's hash and its chunk hashes, over the `size` bytes `stat` saw. */
async function hashFile(path: string, size: number, chunkSize: number): Promise<{ sha256: string; chunkSha256: string[] }> {
  const h = await sha256Stream(createReadStream(path, { start: 0, end: size - 1, highWaterMark: chunkSize }), chunkSize);
  if (h.size !== size) throw new TransferError(`${path}: file shrank while hashing`);
  return { sha256: h.sha256, chunkSha256: h.chunkSha256 };
}
