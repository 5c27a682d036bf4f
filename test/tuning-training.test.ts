import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { createStandardRooms } from '../control-plane/compose.ts';
import type { TuningView } from '../shared/tuning.ts';
import { startTestFleet, waitFor, waitForOnlineWithProfiles, type TestFleet } from './helpers/control-plane.ts';
import { SYSTEM_PYTHON } from './helpers/models.ts';
import { SIMULATED } from './helpers/simulated-devices.ts';

/**
 * One small tuning end to end with the real trainer on a tiny Fashion-MNIST slice: the control plane
 * trains the profile's recipe and its variants (per-channel weights, full 8-bit weights, two layers
 * kept in float) and the fp32 student, registers each as a `candidate`, and a canary measures them.
 * The embedded broker only: the MQTT paths are the same as tuning.test.ts runs on both brokers.
 */

const FMNIST = '/usr/share/datasets/fashion-mnist';
const skip = !existsSync(SYSTEM_PYTHON) || !existsSync(FMNIST) ? 'needs /usr/bin/python3 with torch and the Fashion-MNIST package' : false;
const QUICK_BENCH = { threads: 1, warmupQueries: 5, minQueries: 50, minSeconds: 0, maxSeconds: 20, throughputBatchSize: 4, profileOps: true };

let fleet: TestFleet;
const agents: AgentHandle[] = [];

before(async () => {
  if (skip) return;
  fleet = await startTestFleet('embedded', {}, (dataDir) => createStandardRooms({ dataDir, tuningBenchmark: QUICK_BENCH, tuningIdle: { maxLoadPerCore: 1000 }, tuningTickMs: 250, tuningMaxConcurrentEvaluations: 1, ui: false }).extensions);
  const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 5 } })).body.token;
  const sim = SIMULATED.find((s) => s.expectProfile === 'generic-cpu')!;
  agents.push(await startAgent({ brokerUrl: fleet.cp.brokerUrl, stateDir: mkdtempSync(join(tmpdir(), 'ef-tt-agent-')), enrollmentToken: token, deviceId: 'tt-canary-0', facts: sim.facts, heartbeatIntervalMs: 2000 }));
  // the tuning's default targets are the profiles with an online device
  await waitForOnlineWithProfiles(fleet, 1);
});

after(async () => {
  await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
  await fleet?.stop();
});

test('the trainer builds the candidate set, each a registered candidate, measured on the canary, decided with evidence', { skip, timeout: 900_000 }, async () => {
  const created = await fleet.api('/tunings', {
    method: 'POST',
    json: {
      name: 'tt',
      teacher: { kind: 'zoo', arch: 'resnet-teacher', width: 0.25, depth: 1, epochs: 1 },
      student: { kind: 'zoo', arch: 'compact-cnn', width: 0.5 },
      dataset: { kind: 'fashion-mnist' },
      hyperparameters: {
        device: 'cpu',
        seed: 1,
        threads: 1,
        limits: { trainSamples: 300, testSamples: 100 },
        evalSetSize: 50,
        training: { batchSize: 32, lr: 0.05 },
        distill: { epochs: 1 },
        qat: { epochs: 1, freezeObserversAfterEpochs: 1, freezeBnAfterEpochs: 0.5 },
        ptq: { enabled: false, calibrationBatches: 2 },
      },
      constraints: { maxAccuracyDrop: 0.05 },
    },
  });
  assert.equal(created.status, 201, created.text);
  const id = created.body.id as string;
  assert.deepEqual(created.body.profiles, ['generic-cpu'], 'default targets: the profiles with an online device');
  assert.ok(created.body.trainingJobId);
  const v = await waitFor(
    'the tuning decided',
    async () => {
      const t = (await fleet.api(`/tunings/${id}`)).body as TuningView;
      return ['awaiting-approval', 'failed', 'done'].includes(t.state) ? t : null;
    },
    840_000,
    500,
  );
  assert.equal(v.state, 'awaiting-approval', JSON.stringify({ error: v.error, notes: v.notes }));
  const keys = v.candidates.map((c) => c.key).sort();
  assert.deepEqual(keys, ['fp32', 'generic-cpu', 'generic-cpu-f2', 'generic-cpu-full', 'generic-cpu-pc'], v.notes.join('\n'));
  for (const c of v.candidates) {
    const m = (await fleet.api(`/models/${c.modelId}?version=${c.version}`)).body;
    assert.equal(m.role, 'candidate');
    assert.equal(m.profileId, 'generic-cpu');
    assert.ok(m.signature.length > 0);
    assert.equal(typeof c.pytorchAccuracy, 'number', `${c.key}: PyTorch accuracy`);
    assert.equal(typeof c.runtimeAccuracy, 'number', `${c.key}: onnxruntime accuracy on this host`);
    assert.equal(c.measurements.length, 1, `${c.key} measured on the canary`);
    assert.ok(c.measurements[0]!.p50 > 0);
  }
  const f2 = (await fleet.api(`/models/${v.candidates.find((c) => c.key === 'generic-cpu-f2')!.modelId}`)).body;
  assert.ok(f2, 'mixed-precision candidate registered');
  const d = v.decisions[0]!;
  assert.equal(d.measured, true);
  assert.ok(d.chosen, d.reason);
  const chosen = v.candidates.find((c) => c.key === d.chosen!.key)!;
  assert.equal(chosen.status, 'chosen');
  for (const c of v.candidates.filter((x) => x.key !== chosen.key)) assert.ok(c.reasons.length > 0, `${c.key} lost without a reason`);
  // the latest deliverable model for the profile is never a candidate
  const latest = await fleet.api('/models?profile=generic-cpu&role=candidate');
  assert.ok(latest.body.total >= 5);
  console.log(`# candidates: ${v.candidates.map((c) => `${c.key} pt=${c.pytorchAccuracy} rt=${c.runtimeAccuracy} dev=${c.measurements[0]?.accuracy} p50=${c.measurements[0]?.p50.toFixed(4)}ms ${c.status}`).join(' | ')}`);
});
