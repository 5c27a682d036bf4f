import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PROTOCOL_VERSION, ModelManifestSchema, type ModelManifest, type ModelRef } from '../../shared/messages.ts';
import { generateSigningKeyPair, signManifest } from '../../shared/signing.ts';
import { chunkCount, chunkRange, encodeFrame } from '../../shared/transfer.ts';
import type { CommandContext, ReportBody } from '../commands.ts';
import { silentLogger } from '../log.ts';
import { DeliveryAgent, manifestProblem } from './delivery-agent.ts';
import { Download, type TransferSpec } from './download.ts';
import { ModelStore } from './model-store.ts';
import { sha256Hex } from '../../shared/hash.ts';

const keys = generateSigningKeyPair();
const CHUNK = 1024;

function specOf(bytes: Buffer, transferId = 't1'): TransferSpec {
  const chunkSha256 = Array.from({ length: chunkCount(bytes.length, CHUNK) }, (_, i) => {
    const { start, end } = chunkRange(i, bytes.length, CHUNK);
    return sha256Hex(bytes.subarray(start, end));
  });
  return { transferId, sizeBytes: bytes.length, chunkSize: CHUNK, sha256: sha256Hex(bytes), chunkSha256 };
}

function manifest(bytes: Buffer, over: Partial<ModelManifest> = {}, key = keys.privateKeyPem): ModelManifest {
  const s = specOf(bytes);
  const unsigned = {
    modelId: 'm',
    version: 1,
    profileId: 'generic-cpu',
    recipeId: 'generic-cpu',
    kind: 'int8' as const,
    sizeBytes: s.sizeBytes,
    chunkSize: CHUNK,
    sha256: s.sha256,
    chunkSha256: s.chunkSha256,
    companions: [],
    transferId: s.transferId,
    benchmark: { threads: 1, warmupQueries: 0, minQueries: 1, minSeconds: 0, maxSeconds: 1, throughputBatchSize: 1, profileOps: false },
    runtime: 'onnxruntime-cpu' as const,
    centralAccuracy: null,
    expiresAt: Date.now() + 60_000,
    ...over,
  };
  return ModelManifestSchema.parse(signManifest(unsigned, key));
}

function fakeContext(stateDir: string, serve?: (transferId: string, chunks: number[]) => void): CommandContext & { reports: ReportBody[]; requested: number[][] } {
  const reports: ReportBody[] = [];
  const requested: number[][] = [];
  let active: ModelRef | null = null;
  return {
    deviceId: 'dev-test',
    stateDir,
    logger: silentLogger,
    signingPublicKey: keys.publicKeyPem,
    reports,
    requested,
    report: async (b) => {
      reports.push(b);
    },
    requestChunks: async (id, chunks) => {
      requested.push(chunks);
      serve?.(id, chunks);
    },
    activeModel: () => active,
    setActiveModel: (m) => {
      active = m;
    },
    publishBirth: async () => {},
  };
}

describe('manifest checks', () => {
  const bytes = randomBytes(3000);
  test('a good manifest passes; a forged or tampered one is refused before its expiry is even read', () => {
    assert.equal(manifestProblem(manifest(bytes), keys.publicKeyPem, Date.now()), null);
    assert.match(manifestProblem(manifest(bytes, {}, generateSigningKeyPair().privateKeyPem), keys.publicKeyPem, Date.now())!, /signature/);
    const tampered = { ...manifest(bytes), sizeBytes: 1 };
    assert.match(manifestProblem(tampered, keys.publicKeyPem, Date.now())!, /signature/);
    assert.match(manifestProblem(manifest(bytes, { expiresAt: 1000 }), keys.publicKeyPem, Date.now())!, /expired/);
  });
});

describe('download', () => {
  test('resumes from the bitmap on disk and asks only for missing chunks; a bad chunk is asked for again', async () => {
    const bytes = randomBytes(20 * CHUNK + 77);
    const spec = specOf(bytes);
    const dir = mkdtempSync(join(tmpdir(), 'ef-dl-unit-'));
    const frame = (i: number, corrupt = false): ReturnType<typeof encodeFrame> => {
      const { start, end } = chunkRange(i, bytes.length, CHUNK);
      const payload = Buffer.from(bytes.subarray(start, end));
      if (corrupt) payload[0]! ^= 1;
      return encodeFrame({ transferId: spec.transferId, index: i, sha256: spec.chunkSha256[i]!, payload });
    };
    const { decodeFrame } = await import('../../shared/transfer.ts');
    const feed = (d: Download, i: number, corrupt = false): void => {
      const f = decodeFrame(frame(i, corrupt));
      assert.ok(f.ok);
      d.accept(f.value);
    };

    // first run: serves 8 chunks then is stopped
    const abort1 = new AbortController();
    const asked1: number[] = [];
    let d: Download;
    d = new Download(spec, {
      dir,
      window: 4,
      requestTimeoutMs: 50,
      log: silentLogger,
      signal: abort1.signal,
      request: async (_id, chunks) => {
        asked1.push(...chunks);
        queueMicrotask(() => {
          for (const i of chunks) if (i < 8) feed(d, i);
          if (chunks.some((i) => i >= 8)) abort1.abort(new Error('stop'));
        });
      },
    });
    assert.equal(await d.open(), 0);
    await assert.rejects(d.run(), /stop/);
    assert.equal(d.stats.received, 8);

    // second run: starts at 8, first copy of chunk 10 is corrupt
    const asked2: number[] = [];
    let corrupted = false;
    d = new Download(spec, {
      dir,
      window: 4,
      requestTimeoutMs: 50,
      log: silentLogger,
      signal: new AbortController().signal,
      request: async (_id, chunks) => {
        asked2.push(...chunks);
        queueMicrotask(() => {
          for (const i of chunks) {
            feed(d, i, i === 10 && !corrupted);
            if (i === 10) corrupted = true;
          }
        });
      },
    });
    assert.equal(await d.open(), 8 * CHUNK);
    const path = await d.run();
    assert.deepEqual(readFileSync(path), bytes);
    assert.equal(d.stats.resumedFrom, 8);
    assert.equal(d.stats.corrupt, 1);
    assert.ok(!asked2.some((i) => i < 8), 'held chunks are not asked for again');
    assert.equal(asked2.filter((i) => i === 10).length, 2, 'the corrupt chunk is asked for again');
  });
});

describe('model store', () => {
  test('previous, rollback target and pruning keep N versions plus active and previous', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ef-store-'));
    const store = new ModelStore(dir, 2);
    const bytes = randomBytes(2000);
    for (let v = 1; v <= 4; v++) {
      const f = join(dir, `m${v}`);
      writeFileSync(f, bytes);
      store.install(manifest(bytes, { version: v }), { model: f }, v);
      store.setActive({ modelId: 'm', version: v }, v);
    }
    assert.deepEqual(store.active(), { modelId: 'm', version: 4 });
    assert.deepEqual(store.previous(), { modelId: 'm', version: 3 });
    assert.deepEqual(store.prune('m'), [{ modelId: 'm', version: 2 }, { modelId: 'm', version: 1 }]);
    assert.deepEqual(store.list('m').map((m) => m.ref.version), [4, 3]);
    assert.equal(existsSync(join(dir, 'models', 'm', '3', 'model.onnx')), true);
  });
});

describe('delivery agent', () => {
  test('refuses a deploy when the disk is too small, before asking for any chunk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ef-agent-disk-'));
    const agent = new DeliveryAgent(dir, { freeBytes: async () => 1024 * 1024, minFreeBytes: 0 });
    const ctx = fakeContext(dir);
    const bytes = randomBytes(3 * 1024 * 1024);
    await agent.deploy({ v: PROTOCOL_VERSION, msgId: 'msg-00000001', ts: Date.now(), cmd: 'deploy', rolloutId: 'r1', manifest: manifest(bytes) }, ctx);
    for (let i = 0; i < 200 && ctx.reports.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    await agent.close();
    const states = ctx.reports.map((r) => (r.kind === 'install-state' ? r.state : r.kind));
    assert.deepEqual(states, ['queued', 'failed']);
    const failed = ctx.reports[1]!;
    assert.ok(failed.kind === 'install-state' && /not enough disk space/.test(failed.reason ?? ''));
    assert.deepEqual(ctx.requested, []);
  });

  test("a deploy's `transfer complete` log line and downloadStats say how the whole file was checked", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ef-agent-hash-'));
    const agent = new DeliveryAgent(dir, { runBenchmarks: false, requestTimeoutMs: 200 });
    const bytes = randomBytes(40 * CHUNK + 9);
    const m = manifest(bytes);
    const ctx = fakeContext(dir, (id, chunks) =>
      setImmediate(() => {
        for (const i of chunks) {
          const { start, end } = chunkRange(i, bytes.length, CHUNK);
          agent.transferData(encodeFrame({ transferId: id, index: i, sha256: m.chunkSha256[i]!, payload: bytes.subarray(start, end) }), ctx);
        }
      }),
    );
    const lines: { msg: string; fields: Record<string, unknown> }[] = [];
    const keep = (msg: string, fields: Record<string, unknown> = {}): void => void lines.push({ msg, fields });
    const log = { debug: keep, info: keep, warn: keep, error: keep, child: () => log };
    ctx.logger = log;
    await agent.deploy({ v: PROTOCOL_VERSION, msgId: 'msg-00000003', ts: Date.now(), cmd: 'deploy', rolloutId: 'r1', manifest: m }, ctx);
    for (let i = 0; i < 1000 && !ctx.reports.some((r) => r.kind === 'install-state' && r.state === 'benchmarking'); i++) await new Promise((r) => setTimeout(r, 10));
    await agent.close();
    assert.ok(ctx.reports.some((r) => r.kind === 'install-state' && r.state === 'benchmarking'), 'installed');
    const done = lines.find((l) => l.msg === 'transfer complete');
    assert.equal(done?.fields['wholeHash'], 'chunks');
    assert.equal(done?.fields['wholeHashFallback'], null);
    assert.equal(agent.downloadStats.get(m.transferId)?.wholeHash, 'chunks');
    const installed = agent.store.get({ modelId: 'm', version: 1 })!;
    assert.deepEqual(readFileSync(agent.store.file(installed, 'model')!), bytes);
  });

  test('download progress goes out at each tenth, but not more often than progressIntervalMs', async () => {
    const run = async (msPerChunk: number): Promise<number[]> => {
      const dir = mkdtempSync(join(tmpdir(), 'ef-agent-progress-'));
      let clock = 1_000_000;
      const agent = new DeliveryAgent(dir, { runBenchmarks: false, requestTimeoutMs: 200, progressIntervalMs: 1000, now: () => clock });
      const bytes = randomBytes(100 * CHUNK);
      const m = manifest(bytes);
      const ctx = fakeContext(dir, (id, chunks) =>
        setImmediate(() => {
          for (const i of chunks) {
            clock += msPerChunk;
            const { start, end } = chunkRange(i, bytes.length, CHUNK);
            agent.transferData(encodeFrame({ transferId: id, index: i, sha256: m.chunkSha256[i]!, payload: bytes.subarray(start, end) }), ctx);
          }
        }),
      );
      await agent.deploy({ v: PROTOCOL_VERSION, msgId: 'msg-00000004', ts: Date.now(), cmd: 'deploy', rolloutId: 'r1', manifest: m }, ctx);
      for (let i = 0; i < 1000 && !ctx.reports.some((r) => r.kind === 'install-state' && r.state === 'benchmarking'); i++) await new Promise((r) => setTimeout(r, 10));
      await agent.close();
      assert.ok(ctx.reports.some((r) => r.kind === 'install-state' && r.state === 'benchmarking'), 'installed');
      return ctx.reports.flatMap((r) => (r.kind === 'install-state' && r.state === 'downloading' && r.progress !== null ? [r.progress] : []));
    };
    // 100 chunks, 1 s apart: a report at each tenth (the start, then 10 steps; the step that reaches 100 % included)
    const slow = await run(1000);
    assert.ok(slow.length >= 10 && slow.length <= 12, `slow download: ${slow.length} progress reports ${JSON.stringify(slow)}`);
    assert.ok(slow.some((p) => p >= 0.5 && p < 0.6), 'the 50 % step reported');
    // 100 chunks within 0.1 s: the tenths come faster than one a second, so only the start's report goes out
    const fast = await run(1);
    assert.ok(fast.length <= 2, `fast download: ${fast.length} progress reports ${JSON.stringify(fast)}`);
  });

  test('rollback without a previous version says so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ef-agent-rb-'));
    const agent = new DeliveryAgent(dir);
    const ctx = fakeContext(dir);
    ctx.setActiveModel({ modelId: 'm', version: 1 });
    await agent.rollback({ v: PROTOCOL_VERSION, msgId: 'msg-00000002', ts: Date.now(), cmd: 'rollback', rolloutId: null, to: null }, ctx);
    const r = ctx.reports[0]!;
    assert.ok(r.kind === 'install-state' && r.state === 'failed' && /no previous version/.test(r.reason ?? ''));
  });
});
