import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ChunkBitmap, chunkCount, chunkRange, type ChunkFrame } from '../../shared/transfer.ts';
import type { Logger } from '../log.ts';
import { sha256Hex, sha256Stream } from '../../shared/hash.ts';

/** What a download needs to know of one file; it comes from the signed manifest, so the hashes are trusted. */
export type TransferSpec = { transferId: string; sizeBytes: number; chunkSize: number; sha256: string; chunkSha256: readonly string[] };

export type DownloadStats = {
  /** Chunk indexes asked for, re-requests included. */
  requested: number;
  received: number;
  duplicates: number;
  corrupt: number;
  timeouts: number;
  /** Chunks already on disk when this download (re)started. */
  resumedFrom: number;
  /** Chunk indexes asked for again (lost, corrupt, timed out). */
  repairs: number;
  /** Chunks that arrived without this agent asking for them (published once for a fan-out wave). */
  unasked: number;
  /**
   * How the whole file was last checked: `chunks` (every chunk of it sha256-checked against the signed manifest and
   * written in full at its offset in this run: no second hash pass, no read back), `reread` (the file read back from
   * disk and hashed whole), null before the check.
   */
  wholeHash: 'chunks' | 'reread' | null;
  /**
   * Why the file was read back: `resumed` (chunks on disk from an earlier run, not checked in this one), `recheck` (a
   * later attempt, after a whole-file mismatch); null when the chunk checks covered the file.
   */
  wholeHashFallback: 'resumed' | 'recheck' | null;
  /** How chunks are being written: `sync` (pwrite on the event loop while the disk keeps up) or `async` (thread pool). */
  writes: 'sync' | 'async';
  /** The slowest of the slow writes that moved this download to asynchronous writes, in ms; null while it has not moved. */
  slowWriteMs: number | null;
};

/** See `DownloadOptions.syncWriteMaxMs`. */
export const DEFAULT_SYNC_WRITE_MAX_MS = 20;
/**
 * Slow writes (past `syncWriteMaxMs`) before a download moves to the thread pool: one alone may be the process
 * descheduled in the middle of a fast write on a loaded host, where a slow disk gives slow writes one after the other.
 * (Measured on the 2-core dev host at load 2.5-3.4: 3,200 writes of 256 KiB into the page cache, none over 10 ms.)
 */
export const SLOW_WRITES_TO_SWITCH = 3;

export type DownloadOptions = {
  /** Folder for data.part, bitmap and meta.json of this transfer. */
  dir: string;
  /** Chunks asked for at once (default 16, at most 64). */
  window: number;
  /**
   * Chunks asked for at once while listening on the shared topic (default: `window`). The leading device's asks set
   * how many chunks a wave has in flight, for every device of it: a deeper window keeps the broker busy.
   */
  sharedWindow?: number;
  /**
   * The least time without any chunk before asking again for the outstanding ones that are overdue. The timeout in
   * use adapts to how long asked chunks take to arrive (see `requestTimeout`); it doubles on each silent timeout up to
   * 8x and resets on progress.
   */
  requestTimeoutMs: number;
  /** `ask.again`: these chunks were asked for before (a repair); `ask.shared`: the agent listens on the transfer's shared topic. */
  request: (transferId: string, chunks: number[], ask: { shared: boolean; again: boolean }) => Promise<void>;
  /** The agent listens on the transfer's shared topic: first asks may be served there once for a whole wave. */
  shared?: boolean;
  /**
   * No chunk at all for this long: the download fails with the reason (issue 8 item 9: a transfer never served was
   * retried forever and held up the next deploy). Default 120 s; the re-requests inside it back off (see above).
   */
  stallTimeoutMs?: number;
  /** Epoch ms after which the download fails whatever its progress (the manifest's expiry). */
  deadlineAt?: number;
  /**
   * Chunks are written straight to the file (pwrite on the event loop) while the disk takes them fast, and through the
   * thread pool once SLOW_WRITES_TO_SWITCH writes took longer than this (default 20 ms; 0: the thread pool from the
   * start). A write into the page cache takes well under a millisecond; an asynchronous one keeps its 256 KiB buffer
   * alive across turns of the loop and costs a thread-pool round trip: in the delivery bench (20 agents, 400 MiB, two
   * device processes, two runs with the builds' order swapped) the agents spent 1.70-2.86 CPU-s with synchronous writes
   * against 2.88-3.67 s with asynchronous ones. A slow disk (an SD card flushing) holds writes up: after a few slow ones
   * the rest of the download goes to the thread pool, so the event loop is held up a few times at most.
   */
  syncWriteMaxMs?: number;
  /** The clock (ms) that times chunk writes (default performance.now; a test seam). */
  writeClock?: () => number;
  now?: () => number;
  onProgress?: (receivedBytes: number) => void;
  /** Every chunk is in and the file fsynced; the whole-file check comes next. */
  onVerifying?: () => void;
  log: Logger;
  signal: AbortSignal;
};

/**
 * One file pulled chunk by chunk over MQTT: asks for missing chunks in windows, checks each chunk against the manifest's
 * hash, writes it in place and marks it in a bitmap on disk, so a restart of anything (agent, broker, control plane)
 * resumes where it was. Resolves with the path of the complete, whole-file-verified `data.part`.
 */
/** A download that ended for lack of progress or time; its message is the reason reported as `failed`. */
export class DownloadTimeoutError extends Error {
  override readonly name = 'DownloadTimeoutError';
}

export class Download {
  /** When the last good chunk arrived (or the download started). */
  lastProgressAt = 0;
  readonly stats: DownloadStats = { requested: 0, received: 0, duplicates: 0, corrupt: 0, timeouts: 0, resumedFrom: 0, repairs: 0, unasked: 0, wholeHash: null, wholeHashFallback: null, writes: 'sync', slowWriteMs: null };
  private readonly total: number;
  private bitmap!: ChunkBitmap;
  private data: FileHandle | null = null;
  private bits: FileHandle | null = null;
  private readonly inflight = new Set<number>();
  /** Chunks asked for in this run: asking again is a repair, which the server sends to this device alone. */
  private readonly asked = new Set<number>();
  /** When each outstanding chunk was first (since its last copy arrived) and last asked for. */
  private readonly askedAt = new Map<number, { first: number; last: number }>();
  /** Smoothed ask-to-arrival time and its variation, in ms (RFC 6298's estimator); null before the first sample. */
  private srtt: number | null = null;
  private rttvar = 0;
  private shared: boolean;
  /** Woken to ask again (reaskOutstanding), not by a timeout: the wake is not a silent timeout. */
  private nudged = false;
  private writes: Promise<void> = Promise.resolve();
  /** Bitmap bytes whose chunks are written but whose bits are not yet on disk (see flushBits). */
  private readonly dirtyBits = new Set<number>();
  /** The bits of chunks whose data is on disk: what the bitmap file may say (the in-memory bitmap runs ahead of it). */
  private diskBits = new Uint8Array(0);
  private flushQueued = false;
  private wake: (() => void) | null = null;
  private failure: Error | null = null;
  /**
   * Chunks checked against the manifest's chunk hash and written in full at their offset in this run (see
   * `coveredByChunks`); null when chunks on disk were not (a resumed download) or after a whole-file mismatch.
   */
  private checkedWritten: Uint8Array | null = null;
  private checkedCount = 0;
  /** Durations (ms) of the synchronous writes slower than `syncWriteMaxMs` so far. */
  private readonly slowWrites: number[] = [];

  constructor(
    readonly spec: TransferSpec,
    private readonly o: DownloadOptions,
  ) {
    this.total = chunkCount(spec.sizeBytes, spec.chunkSize);
    this.lastProgressAt = (o.now ?? Date.now)();
    this.shared = o.shared ?? false;
    if ((o.syncWriteMaxMs ?? DEFAULT_SYNC_WRITE_MAX_MS) <= 0) this.stats.writes = 'async';
    if (spec.chunkSha256.length !== this.total) throw new Error(`manifest lists ${spec.chunkSha256.length} chunk hashes for ${this.total} chunks`);
  }

  /** The agent listens on the transfer's shared topic now: first asks may go out as fan-out asks. */
  shareAsks(): void {
    this.shared = true;
  }

  get dataPath(): string {
    return join(this.o.dir, 'data.part');
  }

  /** Bytes held, from the bitmap (so a resumed download starts where it was). */
  get receivedBytes(): number {
    if (!this.bitmap) return 0;
    const lastHeld = this.bitmap.has(this.total - 1);
    const lastSize = this.spec.sizeBytes - (this.total - 1) * this.spec.chunkSize;
    return (this.bitmap.count - (lastHeld ? 1 : 0)) * this.spec.chunkSize + (lastHeld ? lastSize : 0);
  }

  /** Loads (or starts) the on-disk state; returns the bytes already held. */
  async open(): Promise<number> {
    const { dir } = this.o;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const metaPath = join(dir, 'meta.json');
    const meta = JSON.stringify({ transferId: this.spec.transferId, sizeBytes: this.spec.sizeBytes, chunkSize: this.spec.chunkSize, sha256: this.spec.sha256 });
    let bitmap: ChunkBitmap | null = null;
    if (existsSync(metaPath) && existsSync(this.dataPath) && readFileSync(metaPath, 'utf8') === meta) {
      const loaded = ChunkBitmap.fromBytes(this.total, readFileSync(join(dir, 'bitmap')));
      if (loaded.ok) bitmap = loaded.value;
      else this.o.log.warn('resume bitmap unusable; starting over', { transferId: this.spec.transferId, error: loaded.error });
    }
    if (!bitmap) {
      rmSync(this.dataPath, { force: true });
      bitmap = new ChunkBitmap(this.total);
      writeFileSync(join(dir, 'bitmap'), bitmap.bytes, { mode: 0o600 });
      writeFileSync(metaPath, meta, { mode: 0o600 });
    }
    this.bitmap = bitmap;
    this.diskBits = Uint8Array.from(bitmap.bytes);
    this.data = await open(this.dataPath, existsSync(this.dataPath) ? 'r+' : 'w+', 0o600);
    await this.data.truncate(this.spec.sizeBytes);
    this.bits = await open(join(dir, 'bitmap'), 'r+');
    this.stats.resumedFrom = bitmap.count;
    // chunks already on disk were written by an earlier run and not checked in this one: read the file back at the end
    if (bitmap.count === 0) this.checkedWritten = new Uint8Array(this.total);
    else this.stats.wholeHashFallback = 'resumed';
    return this.receivedBytes;
  }

  /** A verified-against-the-manifest chunk goes to disk; anything else is counted and dropped (and asked for again). */
  accept(frame: ChunkFrame): void {
    const i = frame.index;
    if (i >= this.total) {
      this.stats.corrupt++;
      this.o.log.warn('chunk index out of range', { transferId: this.spec.transferId, chunk: i, chunks: this.total });
      return;
    }
    const { start, end } = chunkRange(i, this.spec.sizeBytes, this.spec.chunkSize);
    if (this.bitmap.has(i)) {
      this.stats.duplicates++;
      return;
    }
    if (frame.payload.length !== end - start || sha256Hex(frame.payload) !== this.spec.chunkSha256[i]) {
      this.stats.corrupt++;
      this.inflight.delete(i);
      // asked for again as a repair (to this device alone), even if it came unasked on the shared topic
      this.asked.add(i);
      this.askedAt.delete(i);
      this.o.log.warn('chunk failed its hash check; asking again', { transferId: this.spec.transferId, chunk: i, corrupt: this.stats.corrupt });
      this.poke();
      return;
    }
    // mark first so a second copy arriving during the write counts as a duplicate, but persist the bit only after the data
    this.bitmap.set(i);
    if (!this.inflight.delete(i)) this.stats.unasked++;
    this.stats.received++;
    this.lastProgressAt = (this.o.now ?? Date.now)();
    const asked = this.askedAt.get(i);
    if (asked) {
      this.askedAt.delete(i);
      // timed from the first ask since the last copy that arrived (a corrupt copy restarts the clock), also when it was
      // asked again after a timeout: answers come in order and the server does not send twice a chunk still queued for
      // this device, so the copy that arrives most likely answers the first ask; erring long means fewer repeats.
      // Karn's rule (dropping such samples) would leave no sample at all while the base timeout is below the real
      // delay, which is the case that matters here.
      this.sampleRtt(this.lastProgressAt - asked.first);
    }
    // no copy: the payload is a view of the MQTT packet's own buffer, which nothing else holds or reuses
    const payload = frame.payload;
    if (this.stats.writes === 'sync') this.writeNow(i, payload, start);
    else {
      this.writes = this.writes.then(async () => {
        if (!this.data || !this.bits) return;
        try {
          await writeAll(this.data, payload, start);
          this.written(i);
        } catch (e) {
          this.bitmap.clear(i);
          this.failure = e as Error;
        }
      });
    }
    this.flushBits();
    this.o.onProgress?.(this.receivedBytes);
    this.poke();
  }

  /**
   * Chunk `i` written on the event loop (see `syncWriteMaxMs`); SLOW_WRITES_TO_SWITCH writes slower than the bound move
   * the rest of the download to the thread pool. Nothing of the asynchronous path is pending then: writes only ever
   * switch that way.
   */
  private writeNow(i: number, payload: Uint8Array, start: number): void {
    if (!this.data || !this.bits) return;
    const clock = this.o.writeClock ?? (() => performance.now());
    const t0 = clock();
    try {
      writeAllSync(this.data.fd, payload, start);
      this.written(i);
    } catch (e) {
      this.bitmap.clear(i);
      this.failure = e as Error;
    }
    const took = clock() - t0;
    if (took <= (this.o.syncWriteMaxMs ?? DEFAULT_SYNC_WRITE_MAX_MS)) return;
    this.slowWrites.push(Math.round(took));
    if (this.slowWrites.length < SLOW_WRITES_TO_SWITCH) return;
    this.stats.writes = 'async';
    this.stats.slowWriteMs = Math.max(...this.slowWrites);
    this.o.log.info('chunk writes were slow; the rest of this download writes through the thread pool', { transferId: this.spec.transferId, chunk: i, slowWritesMs: this.slowWrites });
  }

  /** Chunk `i`, checked against its manifest hash, is in the file at its offset: its bit may go to disk. */
  private written(i: number): void {
    this.diskBits[i >> 3]! |= 1 << (i & 7);
    this.dirtyBits.add(i >> 3);
    const c = this.checkedWritten;
    if (c && c[i] === 0) {
      c[i] = 1;
      this.checkedCount++;
    }
  }

  /**
   * Whether the chunk checks of this run cover the whole file: every chunk was sha256-checked against the signed
   * manifest's chunk hash before its write and written in full at its offset (a short pwrite is continued), in a file
   * truncated to the manifest's size. The manifest's whole-file sha256 and its chunk hashes are computed by the control
   * plane in one pass over the same bytes (shared/hash.ts), under one signature, so the file then hashes to the
   * manifest's sha256 and a second sha256 pass here would only repeat what the chunk checks did (it was about half of the
   * agent's hashing; see agent/delivery/README.md). One use: a later attempt (after a recheck) reads the file back.
   */
  private coveredByChunks(): boolean {
    const covered = this.checkedWritten !== null && this.checkedCount === this.total;
    this.checkedWritten = null;
    return covered;
  }

  /**
   * Persists the bitmap bytes whose chunks are on disk, once per burst of chunk writes instead of one extra write per
   * chunk: queued behind the data writes, so a bit never reaches the disk before its chunk does. A crash loses at most
   * a burst of bits, and those chunks are fetched again.
   */
  private flushBits(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      this.writes = this.writes.then(() => this.persistBits());
    });
  }

  private async persistBits(): Promise<void> {
    if (!this.bits || !this.dirtyBits.size) return;
    let lo = Infinity;
    let hi = -1;
    for (const b of this.dirtyBits) {
      lo = Math.min(lo, b);
      hi = Math.max(hi, b);
    }
    this.dirtyBits.clear();
    try {
      await this.bits.write(this.diskBits, lo, hi - lo + 1, lo);
    } catch (e) {
      this.failure = e as Error;
    }
  }

  /** Everything outstanding is asked for again on the next turn (a new connection lost the answers on their way). */
  reaskOutstanding(): void {
    if (!this.inflight.size) return;
    this.inflight.clear();
    this.nudged = true;
    this.poke();
  }

  private sampleRtt(ms: number): void {
    if (this.srtt === null) {
      this.srtt = ms;
      this.rttvar = ms / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
      this.srtt = 0.875 * this.srtt + 0.125 * ms;
    }
  }

  /**
   * How long to wait without any chunk before asking again: the configured timeout, or longer when chunks have been
   * taking longer to arrive (a loaded control plane or broker queues answers; asking again then only doubles the queue:
   * 20 agents on a loaded host were sent 1012 MiB for 400 MiB with a fixed 5 s). Capped at a quarter of the stall
   * timeout so a lost chunk is still asked for again well before the download gives up.
   */
  get requestTimeout(): number {
    const base = this.o.requestTimeoutMs;
    if (this.srtt === null) return base;
    const cap = Math.max(base, (this.o.stallTimeoutMs ?? 120_000) / 4);
    return Math.round(Math.min(cap, Math.max(base, this.srtt + 4 * this.rttvar)));
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Pulls every missing chunk, then checks the whole file; a whole-file mismatch re-checks each chunk and fetches the bad ones again. */
  async run(): Promise<string> {
    const { signal, log } = this.o;
    const id = this.spec.transferId;
    const now = this.o.now ?? Date.now;
    const stallMs = this.o.stallTimeoutMs ?? 120_000;
    this.lastProgressAt = now();
    let silent = 0;
    try {
      for (let attempt = 0; ; attempt++) {
        while (!this.bitmap.complete) {
          if (signal.aborted) throw signal.reason ?? new Error('aborted');
          if (this.failure) throw new Error(`cannot write ${this.dataPath}: ${this.failure.message}`);
          const t = now();
          if (this.o.deadlineAt !== undefined && t >= this.o.deadlineAt) {
            throw new DownloadTimeoutError(`transfer ${id}: the manifest expired at ${new Date(this.o.deadlineAt).toISOString()} with ${this.bitmap.count}/${this.total} chunks received`);
          }
          if (t - this.lastProgressAt >= stallMs) {
            throw new DownloadTimeoutError(`transfer ${id}: no chunk arrived for ${Math.round((t - this.lastProgressAt) / 1000)} s (${this.stats.timeouts} requests unanswered, ${this.bitmap.count}/${this.total} chunks received); giving up`);
          }
          const window = this.shared ? (this.o.sharedWindow ?? this.o.window) : this.o.window;
          if (this.inflight.size <= window / 2) {
            const next = this.bitmap.missing(window - this.inflight.size, this.inflight);
            if (next.length) {
              const fresh = next.filter((i) => !this.asked.has(i));
              const again = next.filter((i) => this.asked.has(i));
              const at = now();
              for (const i of next) {
                this.inflight.add(i);
                this.askedAt.set(i, { first: this.askedAt.get(i)?.first ?? at, last: at });
                this.asked.add(i);
              }
              this.stats.requested += next.length;
              this.stats.repairs += again.length;
              const send = (chunks: number[], isAgain: boolean): void =>
                void this.o.request(id, chunks, { shared: this.shared, again: isAgain }).catch((e: unknown) => log.warn('chunk request not sent', { transferId: id, error: String(e) }));
              if (fresh.length) send(fresh, false);
              if (again.length) send(again, true);
            }
          }
          const before = this.stats.received + this.stats.corrupt;
          const timeout = this.requestTimeout;
          const backoff = timeout * 2 ** Math.min(3, silent);
          const untilGiveUp = Math.max(1, Math.min(stallMs - (now() - this.lastProgressAt), (this.o.deadlineAt ?? Infinity) - now()));
          await this.sleep(Math.min(backoff, untilGiveUp));
          if (this.nudged) this.nudged = false;
          else if (this.stats.received + this.stats.corrupt === before && !this.bitmap.complete) {
            silent++;
            this.stats.timeouts++;
            // only what is overdue is asked for again; a chunk asked for a moment ago is still on its way
            const overdue = [...this.inflight].filter((i) => now() - (this.askedAt.get(i)?.last ?? 0) >= timeout);
            for (const i of overdue) this.inflight.delete(i);
            log.info('no chunks within the timeout; asking again', { transferId: id, overdue: overdue.length, outstanding: this.inflight.size, timeoutMs: timeout, received: this.bitmap.count, chunks: this.total });
          } else silent = 0;
        }
        await this.writes;
        if (this.failure) throw new Error(`cannot write ${this.dataPath}: ${this.failure.message}`);
        await this.data?.sync();
        this.o.onVerifying?.();
        if (this.coveredByChunks()) {
          this.stats.wholeHash = 'chunks';
          return this.dataPath;
        }
        this.stats.wholeHash = 'reread';
        log.info('whole-file hash: reading the file back', { transferId: id, reason: this.stats.wholeHashFallback, attempt });
        const sha = (await sha256Stream(createReadStream(this.dataPath, { highWaterMark: 1 << 20 }))).sha256;
        if (sha === this.spec.sha256) return this.dataPath;
        if (attempt >= 2) throw new Error(`file sha256 ${sha} does not match the manifest's ${this.spec.sha256} after ${attempt + 1} attempts`);
        const bad = await this.recheckChunks();
        this.stats.wholeHashFallback = 'recheck';
        log.warn('whole-file hash mismatch; fetching the chunks that fail their hash again', { transferId: id, badChunks: bad });
      }
    } finally {
      await this.close();
    }
  }

  private async recheckChunks(): Promise<number> {
    let bad = 0;
    const buf = Buffer.allocUnsafe(this.spec.chunkSize);
    for (let i = 0; i < this.total; i++) {
      const { start, end } = chunkRange(i, this.spec.sizeBytes, this.spec.chunkSize);
      const { bytesRead } = await this.data!.read(buf, 0, end - start, start);
      if (sha256Hex(buf.subarray(0, bytesRead)) !== this.spec.chunkSha256[i]) {
        this.bitmap.clear(i);
        bad++;
      }
    }
    this.diskBits = Uint8Array.from(this.bitmap.bytes);
    await this.bits!.write(this.diskBits, 0, this.diskBits.length, 0);
    return bad;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.o.signal.removeEventListener('abort', done);
        this.wake = null;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.o.signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  async close(): Promise<void> {
    await this.writes.catch(() => {});
    // the last burst's bits may not have had their flush queued yet: a resume must find every chunk that is on disk
    await this.persistBits();
    const d = this.data;
    const b = this.bits;
    this.data = null;
    this.bits = null;
    await d?.close().catch(() => {});
    await b?.close().catch(() => {});
  }
}

/**
 * pwrite of the whole buffer: a short write is continued, never taken for the whole chunk (the whole-file check
 * takes a written chunk as checked and on disk at that offset, see `coveredByChunks`).
 */
async function writeAll(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`write at offset ${position + done} wrote nothing`);
    done += bytesWritten;
  }
}

/** `writeAll` on the event loop (see `DownloadOptions.syncWriteMaxMs`). */
function writeAllSync(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const bytesWritten = writeSync(fd, buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`write at offset ${position + done} wrote nothing`);
    done += bytesWritten;
  }
}
