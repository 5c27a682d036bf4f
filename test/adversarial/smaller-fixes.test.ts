import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CommandContext } from '../../agent/commands.ts';
import { DeliveryAgent } from '../../agent/delivery/delivery-agent.ts';
import { DeliveryStore } from '../../control-plane/delivery/delivery-store.ts';
import { createStandardRooms } from '../../control-plane/compose.ts';
import { createLogger, silentLogger } from '../../control-plane/log.ts';
import { ModelManifestSchema, PROTOCOL_VERSION, newMsgId, type Report } from '../../shared/messages.ts';
import { generateSigningKeyPair, signManifest } from '../../shared/signing.ts';
import { sha256Hex } from '../../shared/hash.ts';
import { chunkCount, chunkRange, encodeFrame } from '../../shared/transfer.ts';
import { startTestFleet, type TestFleet } from '../helpers/control-plane.ts';

/**
 * Issue 8 item 12: an unknown /reports/models/:id answered 200 with empty data, `limit=0x10` was accepted as 16, and
 * partial downloads were left behind after ENOSPC. HTTP only for the first two (one broker is enough); the third runs
 * the agent's delivery room against a real full file system (a 1 MiB tmpfs; skipped where mounting is not allowed).
 */
describe('smaller fixes', () => {
  let fleet: TestFleet;
  before(async () => {
    fleet = await startTestFleet('embedded', {}, (dataDir) => createStandardRooms({ dataDir, ui: false }).extensions);
  });
  after(async () => fleet?.stop());

  test('an unknown model report is 404; one with device measurements is 200', async () => {
    const r = await fleet.api('/reports/models/never-registered');
    assert.equal(r.status, 404, r.text);
    assert.match(r.body.message, /never-registered/);
    assert.equal((await fleet.api('/reports/models/never-registered?version=3')).status, 404);
    new DeliveryStore(fleet.cp.ctx.db).addBenchmark({
      deviceId: 'd',
      modelId: 'measured',
      version: 1,
      rolloutId: null,
      result: { runtime: 'onnxruntime-cpu', threads: 1, sessionCreateMs: 1, latencyMs: { p50: 1, p90: 1, p99: 1, mean: 1, min: 1, max: 1, count: 1 }, throughputPerSecond: 1, throughputBatchSize: 1, peakRssBytes: 1, fileSizeBytes: 1, accuracy: null, agreement: null, integerKernelShare: null, topOps: [] },
      baseline: null,
      speedup: null,
      at: 1,
    });
    assert.equal((await fleet.api('/reports/models/measured')).status, 200);
  });

  test('query integers are decimal only: 0x10, 1e3, empty, signs and spaces are 400s', async () => {
    for (const v of ['0x10', '1e3', '', '+16', ' 16', '16.0', '0o20', '0b10000', '016', '99999999999999999999']) {
      const r = await fleet.api(`/devices?limit=${encodeURIComponent(v)}`);
      assert.equal(r.status, 400, `limit=${JSON.stringify(v)}: ${r.text}`);
      assert.match(r.text, /limit/);
    }
    assert.equal((await fleet.api('/devices?limit=16')).body.limit, 16);
    assert.equal((await fleet.api('/models?offset=0x10')).status, 400);
    assert.equal((await fleet.api('/reports/models/measured?version=0x1')).status, 400);
    assert.equal((await fleet.api('/training-jobs?limit=1e1')).status, 400);
    // the fleet report's page and the tunings list took z.coerce too
    for (const q of ['/reports/fleet?limit=0x10', '/reports/fleet?offset=1e3', '/reports/fleet?limit=', '/tunings?limit=0x10', '/tunings?offset=-0']) {
      const r = await fleet.api(q);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
    }
    assert.equal((await fleet.api('/reports/fleet?limit=16')).status, 200);
    assert.equal((await fleet.api('/tunings?limit=16')).body.limit, 16);
  });

  test('ENOSPC in the middle of a download: the job fails with the reason and its partial files are removed', async (t) => {
    const mnt = mkdtempSync(join(tmpdir(), 'ef-enospc-'));
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (m.status !== 0) return t.skip(`cannot mount a small tmpfs here (${(m.stderr || m.error?.message || '').trim()}); needs root`);
    try {
      const keys = generateSigningKeyPair();
      const data = randomBytes(3 * 1024 * 1024); // three times the file system
      const chunkSize = 64 * 1024;
      const n = chunkCount(data.length, chunkSize);
      const chunk = (i: number): Buffer => {
        const { start, end } = chunkRange(i, data.length, chunkSize);
        return data.subarray(start, end);
      };
      const transferId = sha256Hex(data).slice(0, 32) + '-65536';
      const manifest = ModelManifestSchema.parse(
        signManifest(
          {
            modelId: 'too-big', version: 1, profileId: 'generic-cpu', recipeId: 'generic-cpu', kind: 'int8', sizeBytes: data.length, chunkSize,
            sha256: sha256Hex(data), chunkSha256: Array.from({ length: n }, (_, i) => sha256Hex(chunk(i))), companions: [], transferId,
            benchmark: { threads: 1, warmupQueries: 0, minQueries: 1, minSeconds: 0, maxSeconds: 1, throughputBatchSize: 1, profileOps: false },
            runtime: 'onnxruntime-cpu', centralAccuracy: null, expiresAt: Date.now() + 600_000,
          },
          keys.privateKeyPem,
        ),
      );
      const stateDir = join(mnt, 'state');
      // a partial download some earlier run left behind (no job wants it): removed at resume
      mkdirSync(join(stateDir, 'delivery', 'transfers', 'orphan-1'), { recursive: true });
      writeFileSync(join(stateDir, 'delivery', 'transfers', 'orphan-1', 'data.part'), Buffer.alloc(100 * 1024));
      // the free-space check passes (as when something else fills the disk during the download)
      const agent = new DeliveryAgent(stateDir, { requestTimeoutMs: 500, freeBytes: async () => 1e12 });
      const reports: Report[] = [];
      const ctx: CommandContext = {
        deviceId: 'dev-enospc', stateDir, logger: process.env.EDGEFLEET_TEST_LOGS ? createLogger() : silentLogger, signingPublicKey: keys.publicKeyPem,
        report: async (r) => void reports.push({ v: 1, msgId: newMsgId(), ts: Date.now(), ...r } as Report),
        requestChunks: async (id, chunks) => {
          for (const i of chunks) setImmediate(() => agent.transferData(encodeFrame({ transferId: id, index: i, sha256: sha256Hex(chunk(i)), payload: chunk(i) }), ctx));
        },
        activeModel: () => null, setActiveModel: () => {}, publishBirth: async () => {},
      };
      agent.resume(ctx);
      assert.equal(existsSync(join(stateDir, 'delivery', 'transfers', 'orphan-1')), false, 'orphaned partial download removed');
      await agent.deploy({ v: PROTOCOL_VERSION, msgId: newMsgId(), ts: Date.now(), cmd: 'deploy', rolloutId: null, manifest }, ctx);
      const deadline = Date.now() + 30_000;
      while (!reports.some((r) => r.kind === 'install-state' && r.state === 'failed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await agent.close();
      const failed = reports.find((r) => r.kind === 'install-state' && r.state === 'failed');
      assert.ok(failed && failed.kind === 'install-state', `failed reported (saw ${reports.map((r) => (r.kind === 'install-state' ? r.state : r.kind)).join(',')})`);
      assert.match(failed.reason ?? '', /ENOSPC|no space/i);
      assert.deepEqual(readdirSync(join(stateDir, 'delivery', 'transfers')), [], 'no partial download left behind');
      assert.deepEqual(readdirSync(join(stateDir, 'delivery', 'jobs')), []);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});
