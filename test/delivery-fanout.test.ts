import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { createDeliveryExtension } from '../control-plane/delivery/index.ts';
import { sha256Hex } from '../shared/hash.ts';
import { PROTOCOL_VERSION, newMsgId } from '../shared/messages.ts';
import { deviceTopic, transferDataTopic } from '../shared/topics.ts';
import type { DeliverySource } from '../shared/transfer.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw, subscribeGrants } from './helpers/raw-device.ts';
import { SIMULATED } from './helpers/simulated-devices.ts';

/**
 * Fan-out (issue 10): a wave of devices downloading the same transfer gets each chunk published once on the shared
 * topic `transfers/{id}/data`, granted per offer on the broker and revoked when the transfer ends; the per-device path
 * stays for repairs (a corrupt shared frame, late joiners). Both brokers, small files.
 */
const KiB = 1024;
const MiB = 1024 * KiB;
const WAVE = 20;
const work = mkdtempSync(join(tmpdir(), 'ef-fanout-'));
// 17 chunks of 256 KiB, the last one short: more than one window (16) per agent
const SIZE = 4 * MiB + 4321;
const model = join(work, 'model-4mb.bin');
writeFileSync(model, randomBytes(SIZE));
const modelSha = sha256Hex(readFileSync(model));
const CHUNKS = Math.ceil(SIZE / (256 * KiB));
const other = join(work, 'other-1mb.bin');
writeFileSync(other, randomBytes(MiB + 7));
const restartModel = join(work, 'restart-8mb.bin');
writeFileSync(restartModel, randomBytes(8 * MiB + 5));
const restartSha = sha256Hex(readFileSync(restartModel));
const candidate = join(work, 'candidate-2mb.bin');
writeFileSync(candidate, randomBytes(2 * MiB + 99));
const unicastModel = join(work, 'unicast-2mb.bin');
writeFileSync(unicastModel, randomBytes(2 * MiB + 13));
const unicastSha = sha256Hex(readFileSync(unicastModel));
const VNNI = SIMULATED.find((s) => s.expectProfile === 'x86-64-vnni')!.facts;
/** The shared frame of this chunk is garbled once on its way out: every device that got it repairs it on its own topic. */
const GARBLED = 2;

const source = (modelId: string, path: string): DeliverySource => ({
  modelId,
  version: 1,
  profileId: 'x86-64-vnni',
  recipeId: 'x86-64-vnni',
  kind: 'int8',
  modelPath: path,
  centralAccuracy: null,
  companions: [],
});

const metric = (text: string, name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? '0');

for (const kind of BROKER_KINDS) {
  describe(`fan-out delivery on the ${kind} broker`, () => {
    let fleet: TestFleet;
    let token: string;
    let garbled = 0;
    // long idle and gather times: the wave waits for all of its devices however loaded the host (so no one joins after
    // a publish), and the late joiner below finds the wave still open
    const { extension, service } = createDeliveryExtension({
      waveIdleMs: 600_000,
      gatherMs: 120_000,
      frameFilter: (f) => (f.deviceId === null && f.index === GARBLED && garbled++ === 0 ? Buffer.concat([f.frame.subarray(0, f.frame.length - 1), Buffer.from([f.frame.at(-1)! ^ 0xff])]) : f.frame),
    });
    const agents: AgentHandle[] = [];
    const raws: MqttClient[] = [];
    const stateRoot = mkdtempSync(join(tmpdir(), `ef-fanout-agents-${kind}-`));

    const agent = (name: string): Promise<AgentHandle> =>
      startAgent({
        brokerUrl: fleet.cp.brokerUrl,
        stateDir: join(stateRoot, name),
        enrollmentToken: token,
        deviceId: `${name}-${kind}`,
        facts: VNNI,
        heartbeatIntervalMs: 10_000,
        backoff: { initialMs: 200, maxMs: 1000 },
        // no benchmark child per agent: 21 agents share this process and two cores (delivery is what is tested)
        delivery: { requestTimeoutMs: 5000, trtexecPath: null, runBenchmarks: false },
      }).then((a) => {
        agents.push(a);
        return a;
      });
    const ready = async (a: AgentHandle): Promise<void> => {
      await a.waitFor('connected', 60_000);
      await waitFor(`${a.deviceId} registered`, () => fleet.cp.ctx.devices.get(a.deviceId)?.profileId, 60_000);
    };
    const installed = (deviceId: string, modelId: string): boolean => service.store.events(deviceId).some((e) => e.modelId === modelId && e.state === 'benchmarking');
    const installedBytes = (name: string, modelId: string): Buffer => readFileSync(join(stateRoot, name, 'models', modelId, '1', 'model.onnx'));

    before(async () => {
      fleet = await startTestFleet(kind, { extensions: [extension] });
      token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { label: 'fanout', maxUses: WAVE + 10 } })).body.token;
    });
    after(async () => {
      await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
      await Promise.all(raws.map((c) => c.endAsync().catch(() => {})));
      await fleet?.stop();
    });

    test(`a wave of ${WAVE} agents: byte-identical files, each chunk published once, a corrupt shared frame and a late joiner repaired on the device topic`, async () => {
      const wave = await Promise.all(Array.from({ length: WAVE }, (_, i) => agent(`w${i}`)));
      const late = await agent('late');
      await Promise.all([...wave, late].map(ready));
      const metricsBefore = (await fleet.api('/metrics')).text;
      const deliveries = await Promise.all(wave.map((a) => service.deliver(a.deviceId, source('shared-model', model))));
      const transferId = deliveries[0]!.manifest.transferId;
      assert.equal(deliveries[0]!.manifest.chunkSha256.length, CHUNKS);
      // once the wave is under way, a device offered the transfer that never asks (offline, say) keeps it open past the wave
      await waitFor('the wave under way', () => service.transfers.publishedStats(transferId).fanoutChunks > 0, 120_000);
      service.store.offer(`holder-${kind}`, transferId, 'dlv-holder', Date.now(), Date.now() + 3_600_000);
      await waitFor('the whole wave installed', () => wave.every((a) => installed(a.deviceId, 'shared-model')), 240_000, 100);

      for (let i = 0; i < WAVE; i++) assert.equal(sha256Hex(installedBytes(`w${i}`, 'shared-model')), modelSha, `w${i} byte-identical`);
      // a publish is counted when the broker acknowledges it, which can trail the last install by a moment
      await waitFor('every shared publish acknowledged', () => service.transfers.publishedStats(transferId).fanoutChunks >= CHUNKS);
      const p = service.transfers.publishedStats(transferId);
      assert.equal(p.waves, 1, 'one wave');
      assert.equal(p.fanoutChunks, CHUNKS, 'every chunk published once on the shared topic');
      assert.equal(garbled, 1, 'the garbled chunk went out once on the shared topic');
      const dl = wave.map((a) => a.delivery!.downloadStats.get(transferId)!);
      const why = `timeouts ${dl.map((d) => d.timeouts).join(' ')}; repairs ${dl.map((d) => d.repairs).join(' ')}; corrupt ${dl.map((d) => d.corrupt).join(' ')}`;
      // every device that got the garbled frame asked for that chunk again and got it alone; nobody timed out for it
      const hit = wave.filter((_, i) => dl[i]!.corrupt > 0);
      assert.ok(hit.length >= WAVE / 2, `devices that saw the garbled frame: ${hit.length} (${why})`);
      for (const a of hit) assert.ok(service.transfers.statsFor(a.deviceId, transferId).chunks >= 1, `${a.deviceId} repaired on its own topic (${why})`);
      // repairs aside, far less than one copy per device went out on device topics
      assert.ok(p.unicastChunks < (WAVE * CHUNKS) / 4, `per-device chunks ${p.unicastChunks} of ${WAVE * CHUNKS} unicast-equivalent (${why})`);
      const metricsAfter = (await fleet.api('/metrics')).text;
      const counted = metric(metricsAfter, 'edgefleet_delivery_fanout_chunks_published_total') - metric(metricsBefore, 'edgefleet_delivery_fanout_chunks_published_total');
      assert.equal(counted, CHUNKS, 'the metric counts one publish per chunk');
      assert.equal(metric(metricsAfter, 'edgefleet_delivery_fanout_waves_total') - metric(metricsBefore, 'edgefleet_delivery_fanout_waves_total'), 1);

      // late joiner: offered the same transfer while its wave is still open; every chunk was published before it joined
      await service.deliver(late.deviceId, source('shared-model', model));
      await waitFor('the late joiner installed', () => installed(late.deviceId, 'shared-model'), 120_000, 100);
      assert.equal(sha256Hex(installedBytes('late', 'shared-model')), modelSha);
      assert.equal(service.transfers.statsFor(late.deviceId, transferId).chunks, CHUNKS, 'the late joiner got every chunk on its own topic');
      const afterLate = service.transfers.publishedStats(transferId);
      assert.equal(afterLate.fanoutChunks, CHUNKS, 'nothing published on the shared topic again');
      assert.equal(afterLate.waves, 1);
      assert.equal(afterLate.chunkReads, CHUNKS, 'each chunk read from the file once: the wave, its repairs and the late joiner were served from the frame cache');
    });

    test(`per-device delivery to ${WAVE} agents asking at once: byte-identical, each chunk read from the file once`, async () => {
      const wave = agents.filter((a) => /^w\d+-/.test(a.deviceId));
      assert.equal(wave.length, WAVE);
      service.setFanout(false);
      try {
        const deliveries = await Promise.all(wave.map((a) => service.deliver(a.deviceId, source('unicast-model', unicastModel))));
        const transferId = deliveries[0]!.manifest.transferId;
        const chunks = deliveries[0]!.manifest.chunkSha256.length;
        await waitFor('every agent installed', () => wave.every((a) => installed(a.deviceId, 'unicast-model')), 240_000, 100);
        for (const a of wave) assert.equal(sha256Hex(installedBytes(a.deviceId.replace(`-${kind}`, ''), 'unicast-model')), unicastSha, `${a.deviceId} byte-identical`);
        const p = service.transfers.publishedStats(transferId);
        assert.equal(p.fanoutChunks, 0, 'nothing on the shared topic');
        assert.ok(p.unicastChunks >= WAVE * chunks, `every device got every chunk on its own topic (${p.unicastChunks})`);
        // twenty devices ask for chunk 0..15 within milliseconds: concurrent asks for a chunk not yet cached share one read
        assert.equal(p.chunkReads, chunks, `chunks read from the file: ${p.chunkReads} for ${chunks} chunks`);
      } finally {
        service.setFanout(true);
      }
    });

    test('tuning evaluations use the shared topic too: one publish per chunk for the canaries, offers closed by their answers', async () => {
      const canaries = agents.filter((a) => /^w[0-2]-/.test(a.deviceId));
      assert.equal(canaries.length, 3);
      const sent = await Promise.all(canaries.map((a) => service.evaluate(a.deviceId, source('candidate', candidate), { tuningId: 'tun-fanout-test', idle: { maxLoadPerCore: 1000, idleWaitSeconds: 60 } })));
      const transferId = sent[0]!.manifest.transferId;
      const chunks = sent[0]!.manifest.chunkSha256.length;
      assert.deepEqual(service.store.openOfferDevices(transferId).sort(), canaries.map((a) => a.deviceId).sort());
      // the agents here do not benchmark, so each evaluation answers `failed` once the candidate is downloaded
      await waitFor('every canary answered and its offer closed', () => service.store.openOfferDevices(transferId).length === 0, 120_000, 100);
      const p = service.transfers.publishedStats(transferId);
      assert.equal(p.fanoutChunks, chunks, 'each chunk of the candidate published once for the three canaries');
      assert.equal(p.waves, 1);
      for (const a of canaries) assert.equal(a.delivery!.downloadStats.get(transferId)?.received, chunks, `${a.deviceId} got every chunk`);
      assert.ok(p.unicastChunks < chunks, `per-device chunks ${p.unicastChunks}`);
    });

    test('a device not offered a transfer cannot subscribe to its data topic and receives nothing; an offered one can, until the transfer ends', async () => {
      const enroll = async (id: string): Promise<MqttClient> => {
        const { password } = await enrollRaw(fleet.cp.brokerUrl, token, id);
        const c = await connectRaw(fleet.cp.brokerUrl, { clientId: id, username: id, password });
        raws.push(c);
        return c;
      };
      const outsiderId = `outsider-${kind}`;
      const insiderId = `insider-${kind}`;
      const outsider = await enroll(outsiderId);
      const insider = await enroll(insiderId);
      await insider.publishAsync(deviceTopic(insiderId, 'birth'), birthPayload(insiderId, VNNI as unknown as Record<string, unknown>), { qos: 1 });
      await waitFor('insider registered', () => fleet.cp.ctx.devices.get(insiderId)?.profileId);
      const t = await service.registerTransfer(other);
      const topic = transferDataTopic(t.transferId);
      const outsiderGot: string[] = [];
      outsider.on('message', (tp) => outsiderGot.push(tp));

      assert.deepEqual(await subscribeGrants(outsider, [topic]), [[topic, 128]], 'not offered: SUBACK failure');
      assert.deepEqual(await subscribeGrants(outsider, ['edgefleet/v1/transfers/+/data', 'edgefleet/v1/transfers/#', 'edgefleet/v1/#', '#']), [
        ['edgefleet/v1/transfers/+/data', 128],
        ['edgefleet/v1/transfers/#', 128],
        ['edgefleet/v1/#', 128],
        ['#', 128],
      ]);

      await service.deliver(insiderId, source('other-model', other));
      assert.deepEqual(await subscribeGrants(insider, [topic]), [[topic, 1]], 'offered: granted');
      // the grant is for this transfer only: wildcards stay refused for the offered device too
      assert.deepEqual(await subscribeGrants(insider, ['edgefleet/v1/transfers/+/data']), [['edgefleet/v1/transfers/+/data', 128]]);
      assert.deepEqual(await subscribeGrants(outsider, [topic]), [[topic, 128]], 'still refused to the outsider');
      const frames: Buffer[] = [];
      insider.on('message', (tp, payload) => tp === topic && frames.push(payload));
      // publishing on the shared topic is the control plane's alone (aedes drops the connection of a device that tries)
      // (QoS 0 and not awaited: a QoS 1 publish whose connection aedes closed never settles)
      outsider.publish(topic, Buffer.from('forged'), { qos: 0 });
      // the insider joins the wave by the wire protocol: the control plane publishes those chunks once on the shared topic
      await insider.publishAsync(
        deviceTopic(insiderId, 'xfer/req'),
        JSON.stringify({ v: PROTOCOL_VERSION, msgId: newMsgId(), ts: Date.now(), transferId: t.transferId, chunks: [0, 1, 2, 3, 4], fanout: 'join' }),
        { qos: 1 },
      );
      await waitFor('5 frames on the shared topic', () => frames.length === 5);
      // counted once the broker acknowledged the publish, which may come after the subscriber has the frame
      await waitFor('5 chunks counted', () => service.transfers.publishedStats(t.transferId).fanoutChunks === 5);
      assert.deepEqual(outsiderGot, [], 'the outsider received nothing');
      assert.ok(frames.every((f) => f.subarray(0, 4).toString() === 'EFXF'), 'only the control plane published on the shared topic');

      // the install ends (here: reported failed), the transfer has no open offer left: the grant is revoked
      await insider.publishAsync(
        deviceTopic(insiderId, 'report'),
        JSON.stringify({ v: PROTOCOL_VERSION, msgId: newMsgId(), ts: Date.now(), kind: 'install-state', rolloutId: null, model: { modelId: 'other-model', version: 1 }, state: 'failed', progress: null, reason: 'test ends it' }),
        { qos: 1 },
      );
      await waitFor('the offer closed', () => service.store.openOfferDevices(t.transferId).length === 0);
      await waitFor('the grant revoked', async () => (await subscribeGrants(insider, [topic]))[0]![1] === 128, 20_000, 200);
      // and the data stops at once for the subscription it still holds: nothing more reaches it
      await fleet.cp.ctx.fleet.publish(topic, Buffer.from('after the end'), 1);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(frames.length, 5, 'nothing after the revocation');
      // a closed offer still pulls on the device's own topic (a resume), never on the shared one
      const own: Buffer[] = [];
      insider.on('message', (tp, payload) => tp === deviceTopic(insiderId, 'xfer/data') && own.push(payload));
      await insider.subscribeAsync(deviceTopic(insiderId, 'xfer/data'), { qos: 1 });
      await insider.publishAsync(
        deviceTopic(insiderId, 'xfer/req'),
        JSON.stringify({ v: PROTOCOL_VERSION, msgId: newMsgId(), ts: Date.now(), transferId: t.transferId, chunks: [0], fanout: 'join' }),
        { qos: 1 },
      );
      await waitFor('the chunk on the device topic', () => own.length === 1);
      assert.equal(service.transfers.publishedStats(t.transferId).fanoutChunks, 5);
    });

    test('a control-plane restart in the middle of a wave: every download finishes byte-identical', async () => {
      const group = agents.filter((a) => /^w(1[0-4])-/.test(a.deviceId));
      assert.equal(group.length, 5);
      const sent = await Promise.all(group.map((a) => service.deliver(a.deviceId, source('restart-model', restartModel))));
      const transferId = sent[0]!.manifest.transferId;
      const chunks = sent[0]!.manifest.chunkSha256.length;
      await waitFor('a third of the wave published', () => service.transfers.publishedStats(transferId).fanoutChunks >= chunks / 3, 120_000, 20);
      await fleet.restartControlPlane();
      const restarted = Date.now();
      await waitFor('the group installed after the restart', () => group.every((a) => installed(a.deviceId, 'restart-model')), 180_000, 100);
      for (const a of group) assert.equal(sha256Hex(installedBytes(a.deviceId.replace(`-${kind}`, ''), 'restart-model')), restartSha, `${a.deviceId} byte-identical`);
      const stats = group.map((a) => a.delivery!.downloadStats.get(transferId)!);
      console.log(`# ${kind}: restart to all installed ${((Date.now() - restarted) / 1000).toFixed(1)} s; timeouts ${stats.map((d) => d.timeouts).join(' ')}; repairs ${stats.map((d) => d.repairs).join(' ')}`);
    });
  });
}
