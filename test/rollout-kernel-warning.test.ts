import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { createStandardRooms } from '../control-plane/compose.ts';
import { DeviceFactsSchema } from '../shared/facts.ts';
import { startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { makeDeliveryTestModels } from './helpers/models.ts';
import { SIMULATED } from './helpers/simulated-devices.ts';

/**
 * An operator override sends the x86-64-vnni recipe (full 8-bit weights) to an AVX2 CPU without VNNI: the
 * rollout's answer names the device and why, in its events; a VNNI device in the same rollout gets no
 * warning; the overridden device still gets the model and measures it like any other.
 */
const work = mkdtempSync(join(tmpdir(), 'ef-kwarn-'));
const models = makeDeliveryTestModels(work);
const QUICK_BENCH = { threads: 1, warmupQueries: 1, minQueries: 5, minSeconds: 0, maxSeconds: 10, throughputBatchSize: 2, profileOps: false };
const AVX2 = DeviceFactsSchema.parse({ hostname: 'haswell', platform: 'linux', arch: 'x64', cpu: { manufacturer: 'Intel', brand: 'Core i7-4770', cores: 2, flags: ['sse4_1', 'avx', 'avx2', 'fma'] }, memoryBytes: 8e9 });

let fleet: TestFleet;
const agents: AgentHandle[] = [];
before(async () => {
  if (!models) return;
  fleet = await startTestFleet('embedded', { presenceTimeoutMs: 60_000 }, (dataDir) => createStandardRooms({ dataDir, rolloutBenchmark: QUICK_BENCH, rolloutTickMs: 250, ui: false }).extensions);
  const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 10 } })).body.token as string;
  const zen = SIMULATED.find((s) => s.expectProfile === 'x86-64-vnni')!.facts;
  for (const [deviceId, facts] of [['kw-avx2', AVX2], ['kw-vnni', zen]] as const) {
    agents.push(await startAgent({ brokerUrl: fleet.cp.brokerUrl, stateDir: join(work, deviceId), enrollmentToken: token, deviceId, facts, heartbeatIntervalMs: 2000 }));
  }
  await waitFor('2 devices online', async () => (await fleet.api('/devices?status=online&limit=1')).body.total === 2, 30_000);
});
after(async () => {
  await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
  await fleet?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('x86-64-vnni overridden onto an AVX2 host: warned in the rollout answer, measured like any model', { skip: models ? false : 'needs /usr/bin/python3 with torch and onnx' }, async () => {
  assert.equal((await fleet.api('/devices/kw-avx2')).body.profileId, 'generic-cpu', 'an AVX2 CPU matches generic-cpu by itself');
  const patched = await fleet.api('/devices/kw-avx2', { method: 'PATCH', json: { profileOverride: 'x86-64-vnni' } });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assert.equal(patched.body.profileId, 'x86-64-vnni');
  const m = await fleet.api('/models', { method: 'POST', json: { name: 'kw', file: models!.int8, kind: 'int8', profileId: 'x86-64-vnni', companions: { evalset: models!.evalSet, referencePredictions: models!.referencePredictions } } });
  assert.equal(m.status, 201, JSON.stringify(m.body));
  const r = await fleet.api('/rollouts', { method: 'POST', json: { name: 'override', models: [{ modelId: m.body.id, version: m.body.version, profileId: 'x86-64-vnni' }], waves: { canary: { count: 2 }, then: { percents: [100] } }, gates: { maxFailurePercent: 0, deviceTimeoutSeconds: 300 } } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const events = r.body.events as { kind: string; deviceId: string | null; detail: string | null }[];
  const warnings = events.filter((e) => e.kind === 'kernel-warning');
  assert.deepEqual(warnings.map((w) => w.deviceId), ['kw-avx2']);
  assert.match(warnings[0]!.detail!, /recipe x86-64-vnni has full 8-bit weights.*Intel Core i7-4770.*AVX2 without VNNI.*U8U8/);
  // measured like any model: the overridden device installs and benchmarks it
  let last: unknown = null;
  await waitFor('both devices measured the model', async () => {
    const v = (await fleet.api(`/rollouts/${r.body.summary.id}`)).body as { devices?: { deviceId: string; state: string; accuracy: number | null }[] };
    last = v.devices;
    return (v.devices ?? []).filter((d) => d.state === 'active' && typeof d.accuracy === 'number').length === 2;
  }, 120_000).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(last)}`));
});
