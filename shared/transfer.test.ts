import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { ChunkBitmap, chunkCount, chunkRange, decodeFrame, encodeFrame } from './transfer.ts';
import { sha256Hex } from './hash.ts';

describe('chunk frames', () => {
  const payload = randomBytes(1000);
  const frame = { transferId: 'abc123-256k', index: 70_000, sha256: sha256Hex(payload), payload };

  test('round-trip', () => {
    const bytes = encodeFrame(frame);
    const r = decodeFrame(bytes);
    assert.ok(r.ok);
    assert.equal(r.value.transferId, frame.transferId);
    assert.equal(r.value.index, 70_000);
    assert.equal(r.value.sha256, frame.sha256);
    assert.deepEqual(Buffer.from(r.value.payload), payload);
  });

  test('an empty payload and a unicode id survive', () => {
    const r = decodeFrame(encodeFrame({ transferId: 'modèle', index: 0, sha256: sha256Hex(new Uint8Array()), payload: new Uint8Array() }));
    assert.ok(r.ok);
    assert.equal(r.value.transferId, 'modèle');
    assert.equal(r.value.payload.length, 0);
  });

  test('truncated and garbled frames are refused with a reason', () => {
    const bytes = encodeFrame(frame);
    const cases: [Uint8Array, RegExp][] = [
      [bytes.subarray(0, 3), /truncated: 3 bytes, no header/],
      [bytes.subarray(0, 20), /truncated: 20 bytes, header needs/],
      [bytes.subarray(0, bytes.length - 1), /payload is 999 bytes, header says 1000/],
      [Buffer.concat([bytes, Buffer.from([0])]), /payload is 1001 bytes/],
      [Buffer.from('{"json":"instead"}'), /not a chunk frame/],
    ];
    const badVersion = Buffer.from(bytes);
    badVersion[4] = 9;
    cases.push([badVersion, /unsupported frame version 9/]);
    const noId = Buffer.from(bytes);
    noId[5] = 0;
    cases.push([noId, /empty transferId/]);
    for (const [b, re] of cases) {
      const r = decodeFrame(b);
      assert.equal(r.ok, false);
      assert.match((r as { error: string }).error, re);
    }
  });

  test('a flipped payload bit decodes but no longer matches its hash', () => {
    const bytes = encodeFrame(frame);
    bytes[bytes.length - 1]! ^= 1;
    const r = decodeFrame(bytes);
    assert.ok(r.ok);
    assert.notEqual(sha256Hex(r.value.payload), r.value.sha256);
  });

  test('encode refuses what cannot be framed', () => {
    assert.throws(() => encodeFrame({ ...frame, transferId: '' }), /1..255 bytes/);
    assert.throws(() => encodeFrame({ ...frame, index: -1 }), /u32/);
    assert.throws(() => encodeFrame({ ...frame, sha256: 'xyz' }), /hex/);
  });
});

describe('chunk bitmap', () => {
  test('set, count, missing windows with exclusions', () => {
    const b = new ChunkBitmap(20);
    assert.equal(b.set(0), true);
    assert.equal(b.set(0), false, 'a duplicate chunk counts once');
    b.set(3);
    b.set(19);
    assert.equal(b.count, 3);
    assert.deepEqual(b.missing(4), [1, 2, 4, 5]);
    assert.deepEqual(b.missing(3, new Set([1, 2])), [4, 5, 6]);
    assert.throws(() => b.set(20), /outside/);
    b.clear(3);
    assert.equal(b.has(3), false);
    assert.equal(b.count, 2);
  });

  test('survives a save and load, and knows when it is complete', () => {
    const b = new ChunkBitmap(13);
    for (const i of [0, 5, 8, 12]) b.set(i);
    const loaded = ChunkBitmap.fromBytes(13, Uint8Array.from(b.bytes));
    assert.ok(loaded.ok);
    assert.equal(loaded.value.count, 4);
    assert.deepEqual(loaded.value.missing().length, 9);
    for (const i of loaded.value.missing()) loaded.value.set(i);
    assert.equal(loaded.value.complete, true);
  });

  test('a bitmap of the wrong length is refused; stray bits past the end are ignored', () => {
    assert.equal(ChunkBitmap.fromBytes(13, new Uint8Array(3)).ok, false);
    const loaded = ChunkBitmap.fromBytes(10, Uint8Array.from([0xff, 0xff]));
    assert.ok(loaded.ok);
    assert.equal(loaded.value.count, 10);
    assert.equal(loaded.value.complete, true);
  });

  test('chunk arithmetic', () => {
    assert.equal(chunkCount(20 * 1024 * 1024, 256 * 1024), 80);
    assert.equal(chunkCount(1, 1024), 1);
    assert.equal(chunkCount(1025, 1024), 2);
    assert.deepEqual(chunkRange(1, 1025, 1024), { start: 1024, end: 1025 });
  });
});
