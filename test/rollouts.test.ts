import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { createStandardRooms } from '../control-plane/compose.ts';
import { encodeEvalSet, parseEvalSet } from '../shared/evalset.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { makeDeliveryTestModels } from './helpers/models.ts';
import { SIMULATED } from './helpers/simulated-devices.ts';

const work = mkdtempSync(join(tmpdir(), 'ef-rollouts-'));
const models = makeDeliveryTestModels(work);
/** Short runs: these tests check that real measurements arrive and drive the gates. */
const QUICK_BENCH = { threads: 1, warmupQueries: 2, minQueries: 10, minSeconds: 0, maxSeconds: 10, throughputBatchSize: 4, profileOps: false };
const PROFILES = ['x86-64-vnni', 'armv82-dotprod', 'generic-cpu'] as const;
const AGENTS = 20;

// a model that is wrong on the device: the same network, judged against shuffled labels
let badEvalSet = '';
if (models) {
  const parsed = parseEvalSet(readFileSync(models.evalSet));
  assert.ok(parsed.ok);
  const labels = parsed.value.labels.map((l, i) => (l + 1 + (i % 7)) % parsed.value.numClasses);
  badEvalSet = join(work, 'evalset-wrong-labels.bin');
  writeFileSync(badEvalSet, encodeEvalSet({ ...parsed.value, labels }));
}

for (const kind of BROKER_KINDS) {
  describe(`rollouts by profile on the ${kind} broker`, { skip: models ? false : 'needs /usr/bin/python3 with torch and onnx' }, () => {
    let fleet: TestFleet;
    const agents: AgentHandle[] = [];
    const stateRoot = mkdtempSync(join(tmpdir(), `ef-ro-agents-${kind}-`));
    let token = '';

    const startSimAgent = async (i: number): Promise<AgentHandle> => {
      const sim = SIMULATED.find((s) => s.expectProfile === PROFILES[i % PROFILES.length])!;
      const a = await startAgent({ brokerUrl: fleet.cp.brokerUrl, stateDir: join(stateRoot, `a${i}`), enrollmentToken: token, deviceId: `ro-${sim.kind}-${String(i).padStart(2, '0')}`, facts: sim.facts, heartbeatIntervalMs: 2000 });
      agents.push(a);
      return a;
    };
    const register = async (body: Record<string, unknown>) => {
      const r = await fleet.api('/models', { method: 'POST', json: body });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body as { id: string; version: number };
    };
    const rollout = async (id: string) => (await fleet.api(`/rollouts/${id}`)).body;
    /** The int8 model for a profile, judged against the right labels (central accuracy 0.95, the fp32 baseline v1). */
    const registerGood = (profileId: string) =>
      register({ name: 'cnn', file: models!.int8, kind: 'int8', profileId, centralAccuracy: 0.95, companions: { evalset: models!.evalSet, fp32Baseline: { modelId: 'cnn-fp32', version: 1 } } });
    /** A rollout of one model to its profile, a canary then everyone (default gates); its answer, created or not. */
    const startRollout = async (name: string, m: { modelId: string; version: number; profileId: string }) => {
      const r = await fleet.api('/rollouts', { method: 'POST', json: { name, models: [m], waves: { canary: { count: 1 }, then: { percents: [100] } } } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body;
    };

    before(async () => {
      fleet = await startTestFleet(kind, { presenceTimeoutMs: 60_000 }, (dataDir) => createStandardRooms({ dataDir, rolloutBenchmark: QUICK_BENCH, rolloutTickMs: 250, ui: false }).extensions);
      token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 100 } })).body.token;
      await Promise.all(Array.from({ length: AGENTS - 1 }, (_, i) => startSimAgent(i)));
      await waitFor('19 devices online', async () => (await fleet.api('/devices?status=online&limit=1')).body.total === AGENTS - 1, 30_000);
    });
    after(async () => {
      await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
      await fleet?.stop();
    });

    test('a rollout in waves reaches every targeted device, including a late one, across a control-plane restart', async () => {
      const baseline = await register({ name: 'cnn', file: models!.fp32, kind: 'fp32', role: 'imported' });
      const refs: { modelId: string; version: number; profileId: string }[] = [];
      for (const profileId of PROFILES) {
        const m = await register({
          name: 'cnn',
          file: models!.int8,
          kind: 'int8',
          profileId,
          centralAccuracy: 0.95,
          companions: { evalset: models!.evalSet, referencePredictions: models!.referencePredictions, fp32Baseline: { modelId: baseline.id, version: baseline.version } },
        });
        refs.push({ modelId: m.id, version: m.version, profileId });
      }
      const created = await fleet.api('/rollouts', {
        method: 'POST',
        json: { name: 'cnn v1', models: refs, waves: { canary: { count: 2 }, then: { percents: [50, 100] } }, gates: { maxFailurePercent: 0, deviceTimeoutSeconds: 300 } },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.summary.id as string;
      assert.equal(created.body.summary.devices, AGENTS - 1);
      assert.deepEqual(created.body.waves.map((w: { planned: number }) => w.planned), [2, 8, 9]);

      // a device that registers after the rollout started
      await startSimAgent(AGENTS - 1);
      await waitFor('the canary wave done', async () => (await rollout(id)).summary.currentWave >= 1, 120_000, 250);
      await fleet.restartControlPlane();
      const done = await waitFor('rollout succeeded', async () => {
        const r = await rollout(id);
        assert.notEqual(r.summary.state, 'aborted', r.summary.abortReason);
        return r.summary.state === 'succeeded' && r.devices.every((d: { state: string }) => d.state === 'active') ? r : null;
      }, 240_000, 500);
      assert.equal(done.devices.length, AGENTS, 'the late device joined');
      assert.ok(done.events.some((e: { kind: string }) => e.kind === 'device-joined'), 'late device event');
      for (const d of done.devices) {
        assert.ok(d.p50Ms > 0, `${d.deviceId} measured a p50`);
        assert.ok(d.accuracy >= 0 && d.accuracy <= 1, `${d.deviceId} accuracy ${d.accuracy}`);
        assert.ok(d.speedupVsFp32 > 0, `${d.deviceId} measured int8 against fp32 itself: ${JSON.stringify(d)}`);
      }
      // the devices announce the new model
      const x86Device = done.devices.find((d: { profileId: string }) => d.profileId === 'x86-64-vnni').deviceId as string;
      const dev = await waitFor('active model in heartbeat', async () => {
        const r = (await fleet.api(`/devices/${x86Device}`)).body;
        return r.currentModel?.modelId === refs[0]!.modelId ? r : null;
      }, 20_000);
      assert.equal(dev.currentModel.version, 1);

      const report = await fleet.api(`/reports/models/${refs[0]!.modelId}`);
      assert.equal(report.status, 200);
      const p = report.body.profiles.find((x: { profileId: string }) => x.profileId === 'x86-64-vnni');
      assert.equal(p.devices, 7);
      assert.ok(p.medianP50Ms > 0 && p.medianP90Ms >= p.medianP50Ms, JSON.stringify(p));
      assert.ok(p.medianSpeedupVsFp32 > 0, JSON.stringify(p));
      assert.equal(p.centralAccuracy, 0.95);
      const csv = await fleet.api(`/reports/rollouts/${id}?format=csv`);
      assert.equal(csv.text.trim().split('\n').length, AGENTS + 1);
      assert.match(csv.text.split('\n')[0]!, /^deviceId,profileId,wave,state/);

      const metrics = (await fleet.api('/metrics')).text;
      const value = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? NaN);
      assert.equal(value(/^edgefleet_rollouts\{state="succeeded"\} (\d+)$/m), 1);
      assert.ok(value(/^edgefleet_reports_ingested_total\{kind="benchmark"\} (\d+)$/m) > 0, 'benchmark reports counted (since the restart)');
      assert.ok(value(/^edgefleet_delivery_bytes_served_total (\d+)$/m) > 0, 'transfer bytes counted');
      assert.equal(value(/^edgefleet_model_versions (\d+)$/m), 4);
      // the histograms through prom-client: benchmarks on the devices, report handling, HTTP by route
      assert.ok(value(/^edgefleet_benchmark_duration_seconds_count\{runtime="onnxruntime-cpu",profile="x86-64-vnni"\} (\d+)$/m) > 0, 'benchmark durations observed');
      assert.ok(value(/^edgefleet_mqtt_handling_seconds_count\{channel="report"\} (\d+)$/m) > 0, 'report handling observed');
      assert.ok(value(/^edgefleet_http_request_duration_seconds_count\{method="GET",route="\/rollouts\/:id",status="200"\} (\d+)$/m) > 0);
    });

    test('a failure in the canary trips the gate, stops the rollout and rolls the canary back', async () => {
      const v1 = (await fleet.api('/models/cnn-x86-64-vnni')).body;
      const baselineId = 'cnn-fp32';
      const v2 = await register({
        name: 'cnn',
        file: models!.int8,
        kind: 'int8',
        profileId: 'x86-64-vnni',
        centralAccuracy: 0.95,
        companions: { evalset: badEvalSet, fp32Baseline: { modelId: baselineId, version: 1 } },
      });
      assert.equal(v2.version, 2, JSON.stringify(v1).slice(0, 200));
      const created = await fleet.api('/rollouts', {
        method: 'POST',
        json: { name: 'cnn v2', models: [{ modelId: v2.id, version: 2, profileId: 'x86-64-vnni' }], waves: { canary: { count: 1 }, then: { percents: [100] } }, gates: { maxFailurePercent: 0, maxAccuracyDrop: 0.05 } },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.summary.id as string;
      const aborted = await waitFor('rollout aborted', async () => {
        const r = await rollout(id);
        return r.summary.state === 'aborted' ? r : null;
      }, 120_000, 250);
      assert.match(aborted.summary.abortReason, /accuracy drop/);
      const canary = aborted.devices.find((d: { wave: number }) => d.wave === 0);
      assert.ok(aborted.devices.filter((d: { wave: number; state: string }) => d.wave > 0).every((d: { state: string }) => d.state === 'pending'), 'nothing sent past the canary');
      let seen = '';
      const back = await waitFor('canary rolled back to v1', async () => {
        const r = await rollout(id);
        const c = r.devices.find((d: { deviceId: string }) => d.deviceId === canary.deviceId);
        const dev = (await fleet.api(`/devices/${canary.deviceId}`)).body;
        seen = `rollout device ${c.state}, device model ${JSON.stringify(dev.currentModel)}; events ${JSON.stringify(r.events.slice(0, 6))}`;
        return c.state === 'rolled-back' && dev.currentModel?.version === 1 ? dev : null;
      }, 60_000, 250).catch((e: Error) => {
        throw new Error(`${e.message}: ${seen}`);
      });
      assert.equal(back.currentModel.modelId, 'cnn-x86-64-vnni');
    });

    test('a model at chance level passes the relative accuracy gate but not the absolute floor (minAccuracy)', async () => {
      // central and on-device accuracy agree (both near chance), so only the floor can stop it
      const bad = await register({ name: 'cnn', file: models!.int8, kind: 'int8', profileId: 'armv82-dotprod', centralAccuracy: 0.11, companions: { evalset: badEvalSet, fp32Baseline: { modelId: 'cnn-fp32', version: 1 } } });
      const created = await fleet.api('/rollouts', {
        method: 'POST',
        json: { models: [{ modelId: bad.id, version: bad.version, profileId: 'armv82-dotprod' }], waves: { canary: { count: 1 }, then: { percents: [100] } }, gates: { maxFailurePercent: 0, maxAccuracyDrop: 0.2, minAccuracy: 0.5 } },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.summary.gates.minAccuracy, 0.5);
      const id = created.body.summary.id as string;
      const aborted = await waitFor('rollout aborted by the floor', async () => {
        const r = await rollout(id);
        return r.summary.state === 'aborted' ? r : null;
      }, 120_000, 250);
      assert.match(aborted.summary.abortReason, /accuracy \d+\.\d% is below the floor of 50\.0%/);
      const canary = aborted.devices.find((d: { wave: number }) => d.wave === 0);
      assert.ok(['failed', 'rolled-back'].includes(canary.state), canary.state);
      assert.ok(canary.accuracy < 0.5, `device accuracy ${canary.accuracy}`);
      const gate = aborted.events.find((e: { kind: string; deviceId: string | null }) => e.kind === 'device-gate' && e.deviceId === canary.deviceId);
      assert.match(gate?.detail ?? '', /below the floor of 50\.0%/, JSON.stringify(aborted.events.slice(0, 8)));
      assert.ok(aborted.devices.filter((d: { wave: number }) => d.wave > 0).every((d: { state: string }) => d.state === 'pending'), 'nothing sent past the canary');
    });

    test('pause holds the next wave, resume finishes it, a manual rollback returns every device to its previous model', async () => {
      const v2 = await registerGood('generic-cpu');
      const id = (await startRollout('generic v2', { modelId: v2.id, version: v2.version, profileId: 'generic-cpu' })).summary.id as string;
      const paused = await fleet.api(`/rollouts/${id}/pause`, { method: 'POST' });
      assert.equal(paused.status, 200);
      assert.equal(paused.body.summary.state, 'paused');
      assert.equal((await fleet.api(`/rollouts/${id}/pause`, { method: 'POST' })).status, 409, 'pausing twice is a conflict');
      // the canary (sent at creation) finishes, but the paused rollout sends nothing more
      await waitFor('canary finished', async () => (await rollout(id)).devices.find((d: { wave: number }) => d.wave === 0).state === 'active', 120_000, 250);
      await new Promise((r) => setTimeout(r, 1500));
      const held = await rollout(id);
      assert.equal(held.summary.state, 'paused');
      assert.ok(held.devices.filter((d: { wave: number }) => d.wave === 1).every((d: { state: string }) => d.state === 'pending'), 'wave 1 held');
      assert.equal((await fleet.api(`/rollouts/${id}/resume`, { method: 'POST' })).body.summary.state, 'running');
      const done = await waitFor('resumed rollout succeeded', async () => {
        const r = await rollout(id);
        return r.summary.state === 'succeeded' ? r : null;
      }, 120_000, 250);
      assert.ok(done.devices.every((d: { state: string }) => d.state === 'active'));
      const rb = await fleet.api(`/rollouts/${id}/rollback`, { method: 'POST' });
      assert.equal(rb.body.summary.state, 'rolled-back');
      const back = await waitFor('every device back on v1', async () => {
        const r = await rollout(id);
        if (!r.devices.every((d: { state: string }) => d.state === 'rolled-back')) return null;
        const models = await Promise.all(r.devices.map(async (d: { deviceId: string }) => (await fleet.api(`/devices/${d.deviceId}`)).body.currentModel));
        return models.every((m: { modelId: string; version: number } | null) => m?.modelId === 'cnn-generic-cpu' && m.version === 1) ? r : null;
      }, 60_000, 250);
      assert.equal(back.devices.length, done.devices.length);
      assert.equal((await fleet.api(`/rollouts/${id}/resume`, { method: 'POST' })).status, 409, 'a rolled-back rollout cannot resume');
    });

    test('a device that registers after two rollouts of its profile succeeded follows the newer one only', async () => {
      // x86 has v1 (the first rollout, succeeded) and v2 (aborted by its gate); v3 goes out and succeeds
      const v3 = await registerGood('x86-64-vnni');
      assert.equal(v3.version, 3);
      const id = (await startRollout('x86 v3', { modelId: v3.id, version: 3, profileId: 'x86-64-vnni' })).summary.id as string;
      const first = (await fleet.api('/rollouts?state=succeeded')).body.items.find((r: { name: string }) => r.name === 'cnn v1');
      assert.ok(first, 'the first rollout succeeded');
      assert.equal(first.devices, AGENTS, 'the list counts its devices');
      const done = await waitFor('x86 v3 succeeded', async () => {
        const r = await rollout(id);
        assert.notEqual(r.summary.state, 'aborted', r.summary.abortReason);
        return r.summary.state === 'succeeded' ? r : null;
      }, 120_000, 250);
      const targeted = done.devices.length;

      const late = await startSimAgent(AGENTS + 1);
      const joined = await waitFor('the late device active on v3', async () => {
        const r = await rollout(id);
        const d = r.devices.find((x: { deviceId: string }) => x.deviceId === late.deviceId);
        const dev = (await fleet.api(`/devices/${late.deviceId}`)).body;
        return d?.state === 'active' && dev.currentModel?.version === 3 ? r : null;
      }, 120_000, 250);
      assert.equal(joined.devices.length, targeted + 1);
      assert.ok(joined.events.some((e: { kind: string; deviceId: string | null }) => e.kind === 'device-joined' && e.deviceId === late.deviceId));
      // the older succeeded rollout of the same profile did not take it (it used to, and send v1 after v3)
      const old = await rollout(first.id);
      assert.equal(old.devices.length, AGENTS, 'the first rollout kept its devices');
      assert.ok(!old.devices.some((x: { deviceId: string }) => x.deviceId === late.deviceId));
      assert.equal((await fleet.api(`/devices/${late.deviceId}`)).body.currentModel.modelId, 'cnn-x86-64-vnni');
    });

    test('a newer rollout takes over the devices a paused one has not reached; resumed, the older one sends them nothing', async () => {
      // armv82 has v1 (the first rollout) and v2 (aborted at its floor); A sends v3 to a canary and is paused
      const v3 = await registerGood('armv82-dotprod');
      assert.equal(v3.version, 3);
      const a = await startRollout('arm v3', { modelId: v3.id, version: 3, profileId: 'armv82-dotprod' });
      const aId = a.summary.id as string;
      assert.equal((await fleet.api(`/rollouts/${aId}/pause`, { method: 'POST' })).status, 200);
      const canary = await waitFor('canary of A active', async () => {
        const d = (await rollout(aId)).devices.find((x: { wave: number }) => x.wave === 0);
        return d.state === 'active' ? d : null;
      }, 120_000, 250);
      const armDevices = a.devices.length as number;
      assert.ok(armDevices >= 3, `${armDevices} armv82 devices`);
      // the gauge counts the devices of open rollouts only (A is the one open now), not every rollout's history
      const metrics = (await fleet.api('/metrics')).text;
      assert.match(metrics, new RegExp(`^edgefleet_rollout_devices\\{state="pending"\\} ${armDevices - 1}$`, 'm'));
      assert.match(metrics, /^edgefleet_rollout_devices\{state="active"\} 1$/m);

      // B: the whole profile back to v1, while A is paused
      const b = await startRollout('arm back to v1', { modelId: 'cnn-armv82-dotprod', version: 1, profileId: 'armv82-dotprod' });
      const bId = b.summary.id as string;
      assert.equal(b.devices.length, armDevices);
      const afterB = await rollout(aId);
      assert.deepEqual(afterB.devices.map((d: { deviceId: string }) => d.deviceId), [canary.deviceId], 'A keeps only the device it finished');
      const superseded = afterB.events.filter((e: { kind: string }) => e.kind === 'device-superseded');
      assert.equal(superseded.length, armDevices - 1);
      assert.ok(superseded.every((e: { detail: string }) => e.detail === `taken over by rollout ${bId} while pending`), JSON.stringify(superseded[0]));

      await waitFor('B succeeded', async () => {
        const r = await rollout(bId);
        assert.notEqual(r.summary.state, 'aborted', r.summary.abortReason);
        return r.summary.state === 'succeeded' ? r : null;
      }, 120_000, 250);
      // A resumed: nothing left to send, it completes, and every armv82 device stays on v1
      assert.equal((await fleet.api(`/rollouts/${aId}/resume`, { method: 'POST' })).status, 200);
      const doneA = await waitFor('A complete', async () => {
        const r = await rollout(aId);
        return r.summary.state === 'succeeded' ? r : null;
      }, 30_000, 250);
      assert.equal(doneA.devices.length, 1, 'A sent nobody after the resume');
      const onV1 = await waitFor('every armv82 device reports v1', async () => {
        const all = await Promise.all(b.devices.map(async (d: { deviceId: string }) => (await fleet.api(`/devices/${d.deviceId}`)).body.currentModel));
        return all.every((m: { modelId: string; version: number } | null) => m?.modelId === 'cnn-armv82-dotprod' && m.version === 1) ? all : null;
      }, 30_000, 250);
      assert.equal(onV1.length, armDevices);
    });

    test('bad rollout bodies are refused naming the field', async () => {
      const unknown = await fleet.api('/rollouts', { method: 'POST', json: { models: [{ modelId: 'nope', version: 1, profileId: 'x86-64-vnni' }] } });
      assert.equal(unknown.status, 400);
      assert.match(unknown.body.message, /models/);
      const waves = await fleet.api('/rollouts', { method: 'POST', json: { models: [{ modelId: 'cnn-x86-64-vnni', version: 1, profileId: 'x86-64-vnni' }], waves: { then: { percents: [60, 40] } } } });
      assert.equal(waves.status, 400);
      assert.match(waves.body.message, /waves\.then/);
      assert.equal((await fleet.api('/rollouts/ro-nope')).status, 404);
      // a model quantized for one profile's recipe is refused for another, saying why and what to do
      const wrong = await fleet.api('/rollouts', { method: 'POST', json: { models: [{ modelId: 'cnn-generic-cpu', version: 1, profileId: 'armv82-dotprod' }] } });
      assert.equal(wrong.status, 400);
      assert.match(wrong.body.message, /models\.0\.profileId: cnn-generic-cpu v1 was quantized with the recipe of profile "generic-cpu", not "armv82-dotprod"/);
      assert.match(wrong.body.message, /"profiles": \["armv82-dotprod"\]/);
    });
  });
}
