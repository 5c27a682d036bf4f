import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sha256Hex } from '../../shared/hash.ts';
import { chunkCount, chunkRange, type ChunkFrame } from '../../shared/transfer.ts';
import { silentLogger } from '../log.ts';
import { Download, type TransferSpec } from './download.ts';

const CHUNK = 1024;

function specOf(bytes: Buffer): TransferSpec {
  const chunkSha256 = Array.from({ length: chunkCount(bytes.length, CHUNK) }, (_, i) => {
    const { start, end } = chunkRange(i, bytes.length, CHUNK);
    return sha256Hex(bytes.subarray(start, end));
  });
  return { transferId: 't1', sizeBytes: bytes.length, chunkSize: CHUNK, sha256: sha256Hex(bytes), chunkSha256 };
}

const frameOf = (bytes: Buffer, i: number): ChunkFrame => {
  const { start, end } = chunkRange(i, bytes.length, CHUNK);
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
