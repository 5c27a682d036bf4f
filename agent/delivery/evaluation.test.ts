import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PROTOCOL_VERSION, ModelManifestSchema, type ModelManifest, type ModelRef } from '../../shared/messages.ts';
import { generateSigningKeyPair, signManifest } from '../../shared/signing.ts';
import { chunkCount, chunkRange, encodeFrame } from '../../shared/transfer.ts';
import { sha256Hex } from '../../shared/hash.ts';
import { makeTestModels } from '../benchmark/test-support/make-models.ts';
import type { CommandContext, EvaluateCommand, ReportBody } from '../commands.ts';
import { silentLogger } from '../log.ts';
import { DeliveryAgent } from './delivery-agent.ts';

/** The agent's `evaluate` command: idle gate, its own folder, benchmark, report, delete, never activate. */

const keys = generateSigningKeyPair();
const CHUNK = 4096;
const models = makeTestModels(mkdtempSync(join(tmpdir(), 'ef-eval-models-')));

function manifest(bytes: Buffer, transferId: string): ModelManifest {
  const chunkSha256 = Array.from({ length: chunkCount(bytes.length, CHUNK) }, (_, i) => {
    const { start, end } = chunkRange(i, bytes.length, CHUNK);
    return sha256Hex(bytes.subarray(start, end));
  });
  return ModelManifestSchema.parse(
    signManifest(
      {
        modelId: 'cand',
        version: 1,
        profileId: 'generic-cpu',
        recipeId: 'generic-cpu',
        kind: 'fp32' as const,
        sizeBytes: bytes.length,
        chunkSize: CHUNK,
        sha256: sha256Hex(bytes),
        chunkSha256,
        companions: [],
        transferId,
        benchmark: { threads: 1, warmupQueries: 1, minQueries: 5, minSeconds: 0, maxSeconds: 5, throughputBatchSize: 2, profileOps: false },
        runtime: 'onnxruntime-cpu' as const,
        centralAccuracy: null,
        expiresAt: Date.now() + 60_000,
      },
      keys.privateKeyPem,
    ),
  );
}

/** A device context that serves every requested chunk of `bytes` straight back into the agent. */
function setup(bytes: Buffer, transferId: string, load: () => number) {
  const stateDir = mkdtempSync(join(tmpdir(), 'ef-eval-'));
  const agent = new DeliveryAgent(stateDir, { loadPerCore: load, idlePollMs: 20, trtexecPath: null });
  const reports: ReportBody[] = [];
  let active: ModelRef | null = null;
  let requests = 0;
  const ctx: CommandContext = {
    deviceId: 'dev-eval',
    stateDir,
    logger: silentLogger,
    signingPublicKey: keys.publicKeyPem,
    report: async (b) => {
      reports.push(b);
    },
    requestChunks: async (id, chunks) => {
      requests++;
      for (const i of chunks) {
        const { start, end } = chunkRange(i, bytes.length, CHUNK);
        const payload = bytes.subarray(start, end);
        setImmediate(() => agent.transferData(Buffer.from(encodeFrame({ transferId: id, index: i, sha256: sha256Hex(payload), payload })), ctx));
      }
    },
    activeModel: () => active,
    setActiveModel: (m) => {
      active = m;
    },
    publishBirth: async () => {},
  };
  const cmd = (): EvaluateCommand => ({ v: PROTOCOL_VERSION, msgId: randomBytes(8).toString('hex'), ts: Date.now(), cmd: 'evaluate', tuningId: 'tun-20260101000000-abcdef', manifest: manifest(bytes, transferId), idle: { maxLoadPerCore: 0.5, idleWaitSeconds: 1 } });
  const states = (): string[] => reports.map((r) => (r.kind === 'evaluation' ? r.state : `${r.kind}`));
  const done = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const poll = (): void => {
        if (states().some((s) => s === 'done' || s === 'failed')) return resolve();
        if (Date.now() - t0 > 60_000) return reject(new Error(`no final report: ${states().join(',')}`));
        setTimeout(poll, 20);
      };
      poll();
    });
  const leftovers = (): string[] => {
    const dir = join(stateDir, 'delivery', 'evaluations');
    return existsSync(dir) ? readdirSync(dir) : [];
  };
  return { agent, ctx, reports, states, done, cmd, leftovers, active: () => active, requests: () => requests };
}

describe('evaluate', { skip: models ? false : 'needs /usr/bin/python3 with onnx' }, () => {
  test('measures the candidate, reports done with the result, deletes it, never activates it; a repeat while running is ignored', async () => {
    const bytes = readFileSync(models!.cnnFp32);
    const s = setup(bytes, 'xf-eval-1', () => 0.1);
    const c = s.cmd();
    await s.agent.evaluate(c, s.ctx);
    await s.agent.evaluate({ ...c, msgId: 'another-msg-id' }, s.ctx);
    await s.done();
    assert.deepEqual(s.states(), ['queued', 'downloading', 'benchmarking', 'done']);
    const final = s.reports.at(-1)!;
    assert.ok(final.kind === 'evaluation' && final.result && final.result.latencyMs.p50 > 0 && final.result.latencyMs.count >= 5);
    assert.equal(final.kind === 'evaluation' && final.loadPerCore, 0.1);
    assert.equal(s.active(), null, 'never activated');
    assert.equal(s.agent.store.active(), null);
    assert.equal(s.agent.store.get({ modelId: 'cand', version: 1 }), null, 'not in the model store');
    assert.deepEqual(s.leftovers(), [], 'candidate deleted');
    assert.equal(s.agent.evaluationsOpen, 0);
    await s.agent.close();
  });

  test('waits while the device is busy, then runs once the load drops', async () => {
    const bytes = readFileSync(models!.cnnFp32);
    let load = 3;
    const s = setup(bytes, 'xf-eval-2', () => load);
    await s.agent.evaluate(s.cmd(), s.ctx);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(s.states(), ['queued', 'waiting-for-idle']);
    assert.equal(s.requests(), 0, 'nothing downloaded while busy');
    load = 0.2;
    await s.done();
    assert.equal(s.states().at(-1), 'done');
    await s.agent.close();
  });

  test('a device that stays busy says so and downloads nothing', async () => {
    const s = setup(randomBytes(5000), 'xf-eval-3', () => 4);
    await s.agent.evaluate(s.cmd(), s.ctx);
    await s.done();
    const final = s.reports.at(-1)!;
    assert.equal(final.kind === 'evaluation' && final.state, 'failed');
    assert.match(final.kind === 'evaluation' ? (final.reason ?? '') : '', /device busy: load 4\.00 per core stayed above 0\.5 for 1 s/);
    assert.equal(s.requests(), 0);
    await s.agent.close();
  });

  test('a candidate that does not load: failed with the reason, and deleted', async () => {
    const s = setup(randomBytes(9000), 'xf-eval-4', () => 0);
    await s.agent.evaluate(s.cmd(), s.ctx);
    await s.done();
    const final = s.reports.at(-1)!;
    assert.equal(final.kind === 'evaluation' && final.state, 'failed');
    assert.match(final.kind === 'evaluation' ? (final.reason ?? '') : '', /benchmark/);
    assert.deepEqual(s.leftovers(), []);
    assert.equal(s.active(), null);
    await s.agent.close();
  });

  test('a forged manifest is refused before anything is fetched', async () => {
    const s = setup(randomBytes(5000), 'xf-eval-5', () => 0);
    const c = s.cmd();
    await s.agent.evaluate({ ...c, manifest: { ...c.manifest, sizeBytes: c.manifest.sizeBytes + 1 } }, s.ctx);
    assert.deepEqual(s.states(), ['failed']);
    assert.equal(s.requests(), 0);
    await s.agent.close();
  });
});
