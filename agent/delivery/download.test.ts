import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { sha256Hex } from '../../shared/hash.ts';
import { chunkCount, chunkRange, type ChunkFrame } from '../../shared/transfer.ts';
import { silentLogger, type Logger } from '../log.ts';
import { Download, SLOW_WRITES_TO_SWITCH, type TransferSpec } from './download.ts';

const CHUNK = 1024;

function specOf(bytes: Buffer, chunk = CHUNK): TransferSpec {
  const chunkSha256 = Array.from({ length: chunkCount(bytes.length, chunk) }, (_, i) => {
    const { start, end } = chunkRange(i, bytes.length, chunk);
    return sha256Hex(bytes.subarray(start, end));
  });
  return { transferId: 't1', sizeBytes: bytes.length, chunkSize: chunk, sha256: sha256Hex(bytes), chunkSha256 };
}

const frameOf = (bytes: Buffer, i: number, chunk = CHUNK): ChunkFrame => {
  const { start, end } = chunkRange(i, bytes.length, chunk);
  return { transferId: 't1', index: i, sha256: '', payload: bytes.subarray(start, end) };
};

/**
 * A loaded server as the agent sees it: answers wait in one queue and come out in bursts `gapMs` apart, longer than the
 * agent's base request timeout. Every ask is answered, repeats included (as the per-device path does).
 */
function queuedServer(bytes: Buffer, gapMs: number, perBurst: number, drop: (i: number, copy: number) => boolean = () => false) {
  const queue: number[] = [];
  const copies = new Map<number, number>();
  let d: Download | null = null;
  const timer = setInterval(() => {
    for (const i of queue.splice(0, perBurst)) {
      const n = (copies.get(i) ?? 0) + 1;
      copies.set(i, n);
      if (!drop(i, n)) d?.accept(frameOf(bytes, i));
    }
  }, gapMs);
  return {
    attach: (x: Download) => (d = x),
    request: async (_id: string, chunks: number[]) => void queue.push(...chunks),
    copies,
    stop: () => clearInterval(timer),
  };
}

/** Runs one download of `bytes` against `server` to the end and checks the file is byte-identical. */
async function downloadAll(bytes: Buffer, server: ReturnType<typeof queuedServer>, o: { window: number; requestTimeoutMs: number }): Promise<Download> {
  const d = new Download(specOf(bytes), { dir: mkdtempSync(join(tmpdir(), 'ef-dl-')), ...o, log: silentLogger, signal: new AbortController().signal, request: server.request });
  server.attach(d);
  await d.open();
  try {
    assert.deepEqual(readFileSync(await d.run()), bytes);
  } finally {
    server.stop();
  }
  return d;
}

test('answers that queue longer than the base timeout are waited for, not asked for again and again', async () => {
  const bytes = randomBytes(64 * CHUNK);
  const d = await downloadAll(bytes, queuedServer(bytes, 150, 8), { window: 16, requestTimeoutMs: 50 });
  // before any chunk arrived, the base timeout (50 ms) fired: at most one window was asked for again; after that the
  // timeout follows the measured delay (150 ms bursts) and nothing more is repeated
  assert.ok(d.stats.timeouts <= 2, `timeouts ${d.stats.timeouts}`);
  assert.ok(d.stats.repairs <= 16, `repeated asks ${d.stats.repairs}`);
  assert.ok(d.stats.requested <= 64 + 16, `chunk asks ${d.stats.requested} for 64 chunks`);
  assert.ok(d.requestTimeout >= 150, `adapted timeout ${d.requestTimeout} ms`);
});

test('a lost chunk is still asked for again once the others have arrived, and only it', async () => {
  const bytes = randomBytes(24 * CHUNK);
  const server = queuedServer(bytes, 20, 4, (i, copy) => i === 5 && copy === 1);
  await downloadAll(bytes, server, { window: 8, requestTimeoutMs: 100 });
  assert.equal(server.copies.get(5), 2, 'the lost chunk was asked for twice');
  assert.ok([...server.copies].every(([i, n]) => i === 5 || n === 1), `only chunk 5 was repeated: ${JSON.stringify([...server.copies])}`);
});

/** What a server sends for the `copy`-th ask of chunk `i`: nothing (lost), a good copy, a corrupt one, several. */
type Copies = (i: number, copy: number) => ('good' | 'corrupt')[];

/**
 * Answers every ask on the next turn, in the order `reorder` gives each ask's chunks; each answer is a fresh frame (as
 * the MQTT parser hands them over), a corrupt one with a byte flipped.
 */
function immediateServer(bytes: Buffer, o: { chunk?: number; copies?: Copies; reorder?: (chunks: number[]) => number[] } = {}) {
  const chunk = o.chunk ?? CHUNK;
  const asked = new Map<number, number>();
  let d: Download | null = null;
  return {
    attach: (x: Download) => (d = x),
    asked,
    request: async (_id: string, chunks: number[]) => {
      const order = (o.reorder ?? ((c: number[]) => c))([...chunks]);
      setImmediate(() => {
        for (const i of order) {
          const n = (asked.get(i) ?? 0) + 1;
          asked.set(i, n);
          for (const kind of (o.copies ?? (() => ['good' as const]))(i, n)) {
            const f = frameOf(bytes, i, chunk);
            const payload = Buffer.from(f.payload);
            if (kind === 'corrupt') payload[0]! ^= 0xff;
            d?.accept({ ...f, payload });
          }
        }
      });
    },
  };
}

/** A logger that keeps what it was told (to see which attempts read the file back). */
function recordingLogger(): Logger & { lines: { level: string; msg: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const at = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => void lines.push({ level, msg, fields });
  const log = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return log;
}

async function fetchWith(
  bytes: Buffer,
  server: ReturnType<typeof immediateServer>,
  o: { spec?: TransferSpec; dir?: string; window?: number; log?: Logger; syncWriteMaxMs?: number; writeClock?: () => number } = {},
): Promise<{ d: Download; run: Promise<string> }> {
  const d = new Download(o.spec ?? specOf(bytes), {
    dir: o.dir ?? mkdtempSync(join(tmpdir(), 'ef-dl-')),
    window: o.window ?? 16,
    requestTimeoutMs: 100,
    ...(o.syncWriteMaxMs !== undefined ? { syncWriteMaxMs: o.syncWriteMaxMs } : {}),
    ...(o.writeClock ? { writeClock: o.writeClock } : {}),
    log: o.log ?? silentLogger,
    signal: new AbortController().signal,
    request: server.request,
  });
  server.attach(d);
  await d.open();
  return { d, run: d.run() };
}

describe('whole-file check: covered by the chunk checks of this run, read back otherwise', () => {
  test('in order: covered by the chunk checks (no second hash pass, no read back), the file is byte-identical', async () => {
    const bytes = randomBytes(40 * CHUNK + 333);
    const log = recordingLogger();
    const { d, run } = await fetchWith(bytes, immediateServer(bytes), { log });
    assert.deepEqual(readFileSync(await run), bytes);
    assert.equal(d.stats.wholeHash, 'chunks');
    assert.equal(d.stats.wholeHashFallback, null);
    assert.equal(log.lines.filter((l) => l.msg.startsWith('whole-file hash: reading')).length, 0);
  });

  test('an empty file (one empty chunk) is covered by its chunk check too', async () => {
    const bytes = Buffer.alloc(0);
    const { d, run } = await fetchWith(bytes, immediateServer(bytes));
    assert.equal(readFileSync(await run).length, 0);
    assert.equal(d.stats.wholeHash, 'chunks');
  });

  test('every chunk sent twice: the second copy is a duplicate, never written again', async () => {
    const bytes = randomBytes(30 * CHUNK);
    const { d, run } = await fetchWith(bytes, immediateServer(bytes, { copies: () => ['good', 'good'] }));
    assert.deepEqual(readFileSync(await run), bytes);
    assert.equal(d.stats.duplicates, 30);
    assert.equal(d.stats.received, 30);
    assert.equal(d.stats.wholeHash, 'chunks');
  });

  test('out of order (each window answered backwards): covered, byte-identical', async () => {
    const bytes = randomBytes(64 * CHUNK + 5);
    const { d, run } = await fetchWith(bytes, immediateServer(bytes, { reorder: (c) => c.reverse() }), { window: 16 });
    assert.deepEqual(readFileSync(await run), bytes);
    assert.equal(d.stats.wholeHash, 'chunks');
  });

  test('a corrupt copy is dropped before its write and asked for again; the good copy completes the coverage', async () => {
    const bytes = randomBytes(24 * CHUNK);
    const server = immediateServer(bytes, { copies: (i, n) => (i === 3 && n === 1 ? ['corrupt'] : i === 7 && n === 1 ? ['corrupt', 'good'] : ['good']) });
    const { d, run } = await fetchWith(bytes, server, { window: 8 });
    assert.deepEqual(readFileSync(await run), bytes);
    assert.equal(d.stats.corrupt, 2);
    assert.equal(server.asked.get(3), 2, 'the corrupt chunk was asked for again');
    assert.equal(d.stats.wholeHash, 'chunks');
  });

  test('a lost first chunk with 100 chunks after it (a device joining a wave mid-file): repaired, covered, nothing read back', async () => {
    const bytes = randomBytes(101 * CHUNK);
    const server = immediateServer(bytes, { copies: (i, n) => (i === 0 && n === 1 ? [] : ['good']) });
    const { d, run } = await fetchWith(bytes, server);
    assert.deepEqual(readFileSync(await run), bytes);
    assert.equal(server.asked.get(0), 2);
    assert.equal(d.stats.wholeHash, 'chunks');
  });

  /** First run: only chunks below `upTo` ever come, then the agent stops; `tamper` then changes the file on disk. */
  async function interrupted(bytes: Buffer, upTo: number, tamper: (dataPath: string) => void = () => {}, spec = specOf(bytes)): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'ef-dl-'));
    const stop = new AbortController();
    const first = new Download(spec, {
      dir,
      window: 4,
      requestTimeoutMs: 50,
      log: silentLogger,
      signal: stop.signal,
      request: async (_id, chunks) =>
        void setImmediate(() => {
          for (const i of chunks) if (i < upTo) first.accept(frameOf(bytes, i));
          if (chunks.some((i) => i >= upTo)) stop.abort(new Error('stop'));
        }),
    });
    await first.open();
    await assert.rejects(first.run(), /stop/);
    tamper(first.dataPath);
    return dir;
  }

  test('a resumed download (chunks on disk from an earlier run, not checked in this one) reads the file back, and it is right', async () => {
    const bytes = randomBytes(20 * CHUNK);
    const dir = await interrupted(bytes, 8);
    const { d, run } = await fetchWith(bytes, immediateServer(bytes), { dir });
    assert.deepEqual(readFileSync(await run), bytes);
    assert.equal(d.stats.resumedFrom, 8);
    assert.equal(d.stats.wholeHash, 'reread');
    assert.equal(d.stats.wholeHashFallback, 'resumed');
  });

  test('a chunk damaged on disk between runs (its bit set): the read back mismatches, the recheck fetches it again, the file is right', async () => {
    const bytes = randomBytes(20 * CHUNK);
    // chunk 2 overwritten on disk after the first run: the bitmap says it is there
    const dir = await interrupted(bytes, 8, (path) => {
      const fd = openSync(path, 'r+');
      writeSync(fd, Buffer.alloc(CHUNK, 0x55), 0, CHUNK, 2 * CHUNK);
      closeSync(fd);
    });
    const log = recordingLogger();
    const server = immediateServer(bytes);
    const { d, run } = await fetchWith(bytes, server, { dir, log });
    assert.deepEqual(readFileSync(await run), bytes);
    assert.equal(log.lines.filter((l) => l.msg.startsWith('whole-file hash mismatch')).length, 1);
    assert.deepEqual(log.lines.find((l) => l.msg.startsWith('whole-file hash mismatch'))?.fields['badChunks'], 1);
    assert.equal(server.asked.get(2), 1, 'the damaged chunk was fetched again');
    assert.equal([...server.asked.keys()].filter((i) => i < 8).length, 1, 'and no other chunk of the first run');
    assert.equal(d.stats.wholeHash, 'reread');
    assert.equal(d.stats.wholeHashFallback, 'recheck');
  });

  test("a file hash that never matches (the manifest's sha256 wrong, every chunk hash right, a resumed download) fails after 3 attempts", async () => {
    const bytes = randomBytes(16 * CHUNK);
    const spec = { ...specOf(bytes), sha256: sha256Hex('not this file') };
    const dir = await interrupted(bytes, 4, undefined, spec);
    const log = recordingLogger();
    const { d, run } = await fetchWith(bytes, immediateServer(bytes), { spec, dir, log });
    await assert.rejects(run, /does not match the manifest's .* after 3 attempts/);
    assert.equal(log.lines.filter((l) => l.msg.startsWith('whole-file hash mismatch')).length, 2, 'rechecked twice');
    assert.deepEqual(log.lines.filter((l) => l.msg.startsWith('whole-file hash: reading')).map((l) => l.fields['attempt']), [0, 1, 2]);
    assert.equal(d.stats.wholeHash, 'reread');
    assert.equal(d.stats.wholeHashFallback, 'recheck');
  });
});

describe('chunk writes: on the event loop while the disk keeps up, through the thread pool after a slow one', () => {
  test('writes that keep up stay on the event loop: byte-identical, covered by the chunk checks', async () => {
    const bytes = randomBytes(40 * CHUNK + 17);
    // a clock that never moves: every write takes 0 ms
    const { d, run } = await fetchWith(bytes, immediateServer(bytes), { writeClock: () => 0 });
    assert.deepEqual(readFileSync(await run), bytes);
    assert.equal(d.stats.writes, 'sync');
    assert.equal(d.stats.slowWriteMs, null);
    assert.equal(d.stats.wholeHash, 'chunks');
  });

  test(`${SLOW_WRITES_TO_SWITCH} writes slower than syncWriteMaxMs move the rest of the download to the thread pool, and it says so once`, async () => {
    const bytes = randomBytes(40 * CHUNK + 17);
    let t = 0;
    const log = recordingLogger();
    // every write seems to take 50 ms (a slow disk)
    const { d, run } = await fetchWith(bytes, immediateServer(bytes), { syncWriteMaxMs: 10, writeClock: () => (t += 50), log });
    assert.deepEqual(readFileSync(await run), bytes);
    assert.equal(d.stats.writes, 'async');
    assert.equal(d.stats.slowWriteMs, 50);
    assert.equal(d.stats.wholeHash, 'chunks');
    const said = log.lines.filter((l) => /writes were slow/.test(l.msg));
    assert.equal(said.length, 1, 'said once');
    assert.equal(said[0]!.fields['chunk'], SLOW_WRITES_TO_SWITCH - 1, `after chunk ${SLOW_WRITES_TO_SWITCH - 1}`);
  });

  test('a few slow writes among fast ones (the process descheduled mid-write on a loaded host) do not move it', async () => {
    const bytes = randomBytes(40 * CHUNK + 17);
    let calls = 0;
    // writes 0 and 20 seem to take 50 ms, all others 0 ms: two strikes, not three
    const clock = (): number => {
      calls++;
      return calls === 2 || calls === 42 ? 50 : 0;
    };
    const { d, run } = await fetchWith(bytes, immediateServer(bytes), { syncWriteMaxMs: 10, writeClock: clock });
    assert.deepEqual(readFileSync(await run), bytes);
    assert.equal(d.stats.writes, 'sync');
    assert.equal(d.stats.slowWriteMs, null);
  });

  test('syncWriteMaxMs 0: through the thread pool from the start, out of order and with a corrupt copy, still byte-identical', async () => {
    const bytes = randomBytes(40 * CHUNK + 17);
    const server = immediateServer(bytes, { reorder: (c) => c.reverse(), copies: (i, n) => (i === 5 && n === 1 ? ['corrupt'] : ['good']) });
    const { d, run } = await fetchWith(bytes, server, { syncWriteMaxMs: 0 });
    assert.deepEqual(readFileSync(await run), bytes);
    assert.equal(d.stats.writes, 'async');
    assert.equal(d.stats.slowWriteMs, null);
    assert.equal(d.stats.corrupt, 1);
    assert.equal(d.stats.wholeHash, 'chunks');
  });
});
