import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { createDeliveryExtension, type FrameFilter } from '../control-plane/delivery/index.ts';
import { ModelManifestSchema, PROTOCOL_VERSION, newMsgId } from '../shared/messages.ts';
import { generateSigningKeyPair, signManifest } from '../shared/signing.ts';
import type { DeliverySource } from '../shared/transfer.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { makeDeliveryTestModels, type DeliveryTestModels } from './helpers/models.ts';
import { SIMULATED } from './helpers/simulated-devices.ts';
import { sha256Hex } from '../shared/hash.ts';

const MiB = 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), 'ef-delivery-'));
const big = join(work, 'random-20mb.bin');
writeFileSync(big, randomBytes(20 * MiB));
const bigSha = sha256Hex(readFileSync(big));
const small = join(work, 'random-2mb.bin');
writeFileSync(small, randomBytes(2 * MiB + 123));
const models: DeliveryTestModels | null = makeDeliveryTestModels(work);
const VNNI = SIMULATED.find((s) => s.expectProfile === 'x86-64-vnni')!.facts;
/** Short runs: these tests check that real measurements arrive, not what they are. */
const QUICK_BENCH = { threads: 1, warmupQueries: 2, minQueries: 20, minSeconds: 0, maxSeconds: 10, throughputBatchSize: 4, profileOps: false };

const source = (modelId: string, path: string, version = 1, companions: DeliverySource['companions'] = []): DeliverySource => ({
  modelId,
  version,
  profileId: 'x86-64-vnni',
  recipeId: 'x86-64-vnni',
  kind: 'int8',
  modelPath: path,
  centralAccuracy: null,
  companions,
});

const installedBytes = (stateDir: string, modelId: string, version: number): Buffer => readFileSync(join(stateDir, 'models', modelId, String(version), 'model.onnx'));

for (const kind of BROKER_KINDS) {
  describe(`model delivery on the ${kind} broker`, () => {
    let fleet: TestFleet;
    let token: string;
    let filter: FrameFilter | null = null;
    // these tests pin the per-device path (their filters garble one device's frames); test/delivery-fanout.test.ts
    // covers the shared topic, with its own corrupt-frame repair
    const { extension, service } = createDeliveryExtension({ fanout: false, frameFilter: (f) => (filter ? filter(f) : f.frame) });
    const agents: AgentHandle[] = [];
    const stateRoot = mkdtempSync(join(tmpdir(), `ef-dl-agents-${kind}-`));

    const agent = async (name: string, extra: { window?: number } = {}): Promise<AgentHandle> => {
      const a = await startAgent({
        brokerUrl: fleet.cp.brokerUrl,
        stateDir: join(stateRoot, name),
        enrollmentToken: token,
        deviceId: `${name}-${kind}`,
        facts: VNNI,
        heartbeatIntervalMs: 5000,
        backoff: { initialMs: 200, maxMs: 1000 },
        delivery: { requestTimeoutMs: 1500, trtexecPath: null, ...extra },
      });
      agents.push(a);
      await a.waitFor('connected', 20_000);
      await waitFor(`${a.deviceId} registered`, () => fleet.cp.ctx.devices.get(a.deviceId)?.profileId);
      return a;
    };
    const states = (deviceId: string, modelId: string): string[] =>
      service.store
        .events(deviceId)
        .filter((e) => e.modelId === modelId)
        .reverse()
        .map((e) => `${e.version}:${e.state}`);
    const waitState = (deviceId: string, modelId: string, version: number, state: string, timeoutMs = 60_000): Promise<true> =>
      waitFor(`${deviceId} ${modelId} v${version} ${state} (saw ${states(deviceId, modelId).join(', ')})`, () => states(deviceId, modelId).includes(`${version}:${state}`), timeoutMs);
    /** A random-bytes "model" goes through install, then its benchmark fails: install is what these tests look at. */
    const waitInstalled = (deviceId: string, modelId: string): Promise<true> => waitState(deviceId, modelId, 1, 'benchmarking');

    before(async () => {
      fleet = await startTestFleet(kind, { extensions: [extension] });
      token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { label: 'delivery', maxUses: 20 } })).body.token;
    });
    after(async () => {
      await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
      await fleet?.stop();
    });

    test('a 20 MB model arrives byte-identical, in windows, over the HTTP delivery route', async () => {
      const a = await agent('big');
      const res = await fleet.api('/deliveries', { method: 'POST', json: { deviceId: a.deviceId, source: source('blob', big) } });
      assert.equal(res.status, 202, res.text);
      assert.equal(res.body.sizeBytes, 20 * MiB);
      await waitInstalled(a.deviceId, 'blob');
      assert.equal(sha256Hex(installedBytes(join(stateRoot, 'big'), 'blob', 1)), bigSha);
      const st = a.delivery!.downloadStats.get(res.body.transferId)!;
      assert.equal(st.received, 80);
      assert.equal(st.corrupt, 0);
      assert.equal(service.transfers.statsFor(a.deviceId, res.body.transferId).refused, 0);
      const t = await fleet.api(`/transfers/${res.body.transferId}`);
      assert.equal(t.body.chunks, 80);
      assert.equal(t.body.sha256, bigSha);
      const seen = states(a.deviceId, 'blob');
      assert.deepEqual(seen.slice(0, 3), ['1:sent', '1:queued', '1:downloading']);
      assert.ok(seen.indexOf('1:verifying') < seen.indexOf('1:benchmarking'));
      // a random-bytes model fails its benchmark, and says so
      await waitState(a.deviceId, 'blob', 1, 'failed');
      assert.match(service.store.install(a.deviceId, 'blob', 1)!.reason ?? '', /benchmark/);
    });

    test('an agent killed mid-download resumes after a restart and asks only for what it lacks', async () => {
      const name = 'resume';
      let a = await agent(name, { window: 8 });
      const { manifest } = await service.deliver(a.deviceId, source('resumed', big));
      const id = manifest.transferId;
      // after 24 good chunks the wire turns to garbage for this device, so the kill lands mid-download for sure
      let good = 0;
      filter = (f) => (f.deviceId === a.deviceId && ++good > 24 ? Buffer.from('garbled') : f.frame);
      await waitFor('24 chunks on disk', () => a.delivery!.downloadStats.get(id)?.received === 24 && a.delivery!.badFrames > 0);
      await a.stop({ graceful: false });
      filter = null;
      const servedBefore = service.transfers.statsFor(a.deviceId, id).chunks;

      a = await startAgent({ stateDir: join(stateRoot, name), facts: VNNI, backoff: { initialMs: 200, maxMs: 1000 }, delivery: { requestTimeoutMs: 1500, trtexecPath: null, window: 8 } });
      agents.push(a);
      await waitInstalled(a.deviceId, 'resumed');
      const st = a.delivery!.downloadStats.get(id)!;
      assert.equal(st.resumedFrom, 24);
      assert.equal(st.received, 80 - 24);
      const servedSecond = service.transfers.statsFor(a.deviceId, id).chunks - servedBefore;
      assert.ok(servedSecond < 80, `second run was served ${servedSecond} chunks`);
      assert.equal(sha256Hex(installedBytes(join(stateRoot, name), 'resumed', 1)), bigSha);
    });

    test('a chunk corrupted on the wire is detected and asked for again', async () => {
      const a = await agent('corrupt');
      let hits = 0;
      filter = (f) => {
        if (f.deviceId !== a.deviceId || f.index !== 3 || hits++ > 0) return f.frame;
        const bad = Buffer.from(f.frame);
        bad[bad.length - 10]! ^= 0xff;
        return bad;
      };
      const { manifest } = await service.deliver(a.deviceId, source('dented', small));
      await waitInstalled(a.deviceId, 'dented');
      filter = null;
      const st = a.delivery!.downloadStats.get(manifest.transferId)!;
      assert.equal(st.corrupt, 1);
      assert.equal(service.transfers.statsFor(a.deviceId, manifest.transferId).chunks, manifest.chunkSha256.length + 1, 'chunk 3 served twice');
      assert.deepEqual(installedBytes(join(stateRoot, 'corrupt'), 'dented', 1), readFileSync(small));
      const metrics = (await fleet.api('/metrics')).text;
      assert.match(metrics, /^edgefleet_delivery_chunks_rerequested_total [1-9]\d*$/m, 're-requested chunk counted');
    });

    test('a manifest with a bad signature is refused, reported failed, and nothing is downloaded', async () => {
      const a = await agent('forged');
      const t = await service.registerTransfer(small);
      service.store.offer(a.deviceId, t.transferId, 'dlv-forged', Date.now());
      const unsigned = {
        ...source('forged', small),
        sizeBytes: t.sizeBytes,
        chunkSize: t.chunkSize,
        sha256: t.sha256,
        chunkSha256: t.chunkSha256,
        companions: [],
        transferId: t.transferId,
        benchmark: QUICK_BENCH,
        runtime: 'onnxruntime-cpu' as const,
        expiresAt: Date.now() + 60_000,
      };
      delete (unsigned as { modelPath?: string }).modelPath;
      delete (unsigned as { companions?: unknown }).companions;
      const manifest = ModelManifestSchema.parse(signManifest({ ...unsigned, companions: [] }, generateSigningKeyPair().privateKeyPem));
      // the control plane offered this install (reports are believed only for offered installs); the manifest was forged on the way
      service.store.createInstall({ deviceId: a.deviceId, modelId: 'forged', version: 1, deliveryId: 'dlv-forged', rolloutId: 'r-forged', transferId: t.transferId, createdAt: Date.now() }, manifest);
      await fleet.cp.ctx.fleet.publishCommand(a.deviceId, { v: PROTOCOL_VERSION, msgId: newMsgId(), ts: Date.now(), cmd: 'deploy', rolloutId: 'r-forged', manifest });
      await waitState(a.deviceId, 'forged', 1, 'failed');
      const ev = service.store.events(a.deviceId).find((e) => e.modelId === 'forged')!;
      assert.match(ev.reason ?? '', /signature/);
      assert.equal(ev.rolloutId, 'r-forged');
      assert.deepEqual(states(a.deviceId, 'forged'), ['1:sent', '1:failed']);
      assert.equal(service.transfers.statsFor(a.deviceId, t.transferId).requests, 0);
      assert.deepEqual(readdirSync(join(stateRoot, 'forged', 'delivery', 'transfers')), []);
      assert.equal(existsSync(join(stateRoot, 'forged', 'models', 'forged')), false);
    });

    test('a control-plane restart mid-download: the download goes on and finishes byte-identical', async () => {
      const a = await agent('cprestart', { window: 8 });
      let good = 0;
      filter = (f) => (f.deviceId === a.deviceId && ++good > 16 ? Buffer.from('garbled') : f.frame);
      const { manifest } = await service.deliver(a.deviceId, source('survivor', big));
      await waitFor('16 chunks on disk', () => a.delivery!.downloadStats.get(manifest.transferId)?.received === 16);
      filter = null;
      await fleet.restartControlPlane();
      await waitInstalled(a.deviceId, 'survivor');
      assert.equal(sha256Hex(installedBytes(join(stateRoot, 'cprestart'), 'survivor', 1)), bigSha);
      // what the restart lost was asked for again: at once after the reconnect (embedded broker: the agent's connection
      // went down with it), or after a request timeout (Mosquitto: the agent stayed connected, its asks went unread)
      const st = a.delivery!.downloadStats.get(manifest.transferId)!;
      assert.ok(st.repairs >= 1, `asked again: repairs ${st.repairs}, timeouts ${st.timeouts}`);
    });

    test('a real int8 model with fp32 baseline and eval set is benchmarked on onnxruntime, stored, shown over HTTP; rollback reactivates the previous version', { skip: models ? false : 'no torch/onnx in /usr/bin/python3' }, async () => {
      const m = models!;
      const a = await agent('onnx');
      const companions: DeliverySource['companions'] = [
        { role: 'fp32-baseline', path: m.fp32 },
        { role: 'evalset', path: m.evalSet },
        { role: 'reference-predictions', path: m.referencePredictions },
      ];
      const benchmarks: number[] = [];
      const off = service.onBenchmark((e) => benchmarks.push(e.model.version));
      const res = await fleet.api('/deliveries', {
        method: 'POST',
        json: { deviceId: a.deviceId, source: { ...source('tiny-cnn', m.int8, 1, companions), centralAccuracy: 0.9 }, rolloutId: 'r-1', benchmark: QUICK_BENCH },
      });
      assert.equal(res.status, 202, res.text);
      await waitState(a.deviceId, 'tiny-cnn', 1, 'active', 120_000);
      const hist = await fleet.api(`/devices/${a.deviceId}/installs`);
      assert.equal(hist.status, 200);
      const b = hist.body.benchmarks[0];
      assert.equal(b.modelId, 'tiny-cnn');
      assert.equal(b.rolloutId, 'r-1');
      assert.equal(b.result.runtime, 'onnxruntime-cpu');
      assert.ok(b.result.latencyMs.p50 > 0);
      assert.ok(b.result.accuracy >= 0 && b.result.accuracy <= 1);
      assert.ok(b.result.agreement >= 0 && b.result.agreement <= 1);
      assert.ok(b.baseline.latencyMs.p50 > 0);
      assert.equal(b.baseline.accuracy, 1, 'the eval set is labelled by the fp32 model');
      assert.ok(Number.isFinite(b.speedup) && b.speedup > 0);
      assert.deepEqual(benchmarks, [1]);
      assert.equal(hist.body.installs[0].state, 'active');
      assert.deepEqual(a.context.activeModel(), { modelId: 'tiny-cnn', version: 1 });

      await service.deliver(a.deviceId, source('tiny-cnn', m.int8, 2, companions), { benchmark: QUICK_BENCH });
      await waitState(a.deviceId, 'tiny-cnn', 2, 'active', 120_000);
      assert.deepEqual(a.context.activeModel(), { modelId: 'tiny-cnn', version: 2 });

      await service.rollback(a.deviceId, null, 'r-back');
      await waitState(a.deviceId, 'tiny-cnn', 2, 'rolled-back');
      await waitFor('v1 active again', () => service.store.install(a.deviceId, 'tiny-cnn', 1)?.state === 'active');
      assert.deepEqual(a.context.activeModel(), { modelId: 'tiny-cnn', version: 1 });
      await waitFor('the device record shows v1', async () => (await fleet.api(`/devices/${a.deviceId}`)).body.currentModel?.version === 1);
      off();
    });
  });
}
