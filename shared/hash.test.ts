import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { sha256Hex, sha256Stream } from './hash.ts';

const ref = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function* split(bytes: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let o = 0;
  for (let i = 0; o < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield bytes.subarray(o, o + n);
    o += n;
  }
}

test('sha256Hex hashes bytes and strings (UTF-8) alike', () => {
  assert.equal(sha256Hex('modèle'), ref(Buffer.from('modèle', 'utf8')));
  assert.equal(sha256Hex(new Uint8Array([1, 2, 3])), ref(new Uint8Array([1, 2, 3])));
});

test('sha256Stream: whole-file and per-chunk hashes do not depend on how the reads split', async () => {
  const bytes = new Uint8Array(10_000).map((_, i) => (i * 31) % 251);
  const chunk = 4096;
  const want = [0, 4096, 8192].map((s) => ref(bytes.subarray(s, Math.min(bytes.length, s + chunk))));
  for (const sizes of [[10_000], [1], [7, 4096, 3], [4096], [5000]]) {
    const h = await sha256Stream(split(bytes, sizes), chunk);
    assert.equal(h.sha256, ref(bytes));
    assert.equal(h.size, bytes.length);
    assert.deepEqual(h.chunkSha256, want, `reads of ${sizes.join(',')}`);
  }
  const plain = await sha256Stream(split(bytes, [333]));
  assert.deepEqual(plain.chunkSha256, []);
  assert.equal(plain.sha256, ref(bytes));
});

test('sha256Stream: an exact multiple of the chunk size has no empty trailing chunk; an empty stream has one', async () => {
  const bytes = new Uint8Array(8192).fill(7);
  assert.equal((await sha256Stream(split(bytes, [1000]), 4096)).chunkSha256.length, 2);
  const empty = await sha256Stream(split(new Uint8Array(), [1]), 4096);
  assert.deepEqual(empty.chunkSha256, [ref(new Uint8Array())]);
  await assert.rejects(sha256Stream(split(bytes, [1]), 0), /chunkSize/);
});
