import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RolloutCreateSchema } from '../../shared/rollouts.ts';
import { createLogger, silentLogger, type Logger } from '../log.ts';
import { waitFor } from '../../test/helpers/control-plane.ts';
import { migrateRoom, openDatabase, type Db } from '../store/db.ts';
import { DeviceStore } from '../store/devices.ts';
import { RolloutService, TICK_RECHECK_MS } from './rollout-service.ts';
import { ROLLOUT_MIGRATIONS, RolloutStore } from './rollout-store.ts';
import { benchmarkResult as result } from '../../test/helpers/benchmark-result.ts';

// Every device event used to run a whole evaluation, which reads every device of the rollout: quadratic in its size
// (10,000 devices: 50 ms per report). A burst of reports now shares an evaluation, and none is lost: the last report
// of the last device still completes the rollout. The service runs over real SQLite; its ports (delivery, the
// registry) record what it sends: the end-to-end path with agents is test/rollouts.test.ts.

const N = 300;
const model = { modelId: 'cnn-generic-cpu', version: 1 };
/** `n` generic-cpu devices and the rollout service over one in-memory SQLite database; `sent` lists the deploys. */
function fixture(n: number, log: Logger = silentLogger, now: () => number = () => Date.now()): { db: Db; store: RolloutStore; svc: RolloutService; sent: string[] } {
  const db = openDatabase(':memory:');
  migrateRoom(db, 'rollouts', ROLLOUT_MIGRATIONS);
  const devices = new DeviceStore(db);
  for (let i = 0; i < n; i++) {
    const id = `dev-${String(i).padStart(4, '0')}`;
    devices.createEnrolled(id, 'h', 't', 1);
    devices.update(id, { profileId: 'generic-cpu' });
  }
  const store = new RolloutStore(db);
  const sent: string[] = [];
  const svc = new RolloutService(
    store,
    devices,
    { modelInfo: () => ({ profileId: 'generic-cpu', centralAccuracy: 0.9 }), modelKnown: () => true, deploy: async (d) => void sent.push(d), rollback: async () => {}, p50On: () => null },
    log,
    now,
  );
  return { db, store, svc, sent };
}

test('a burst of device reports shares evaluations, and the last one still completes the rollout', async () => {
  const { store, svc, sent } = fixture(N);
  const r = svc.create(RolloutCreateSchema.parse({ models: [{ ...model, profileId: 'generic-cpu' }], waves: { canary: { count: 1 }, then: { percents: [100] } } }));
  await waitFor('the canary sent', () => sent.length === 1, 10_000, 10);
  const report = async (d: string): Promise<void> => {
    for (const s of ['downloading', 'verifying', 'benchmarking', 'active'] as const) await svc.onInstallState(d, model, s, null, r.id);
    await svc.onBenchmark(d, model, result(1), null, r.id);
  };
  await report(sent[0]!);
  await waitFor('wave 1 sent', () => sent.length === N, 10_000, 10);
  assert.equal(store.get(r.id)!.currentWave, 1);

  // 299 devices x 5 reports, all at once
  const before = svc.evaluations;
  await Promise.all(sent.slice(1).map(report));
  await waitFor('the rollout succeeded', () => store.get(r.id)!.state === 'succeeded', 10_000, 10);
  const used = svc.evaluations - before;
  assert.ok(used <= 10, `${used} evaluations for ${(N - 1) * 5} reports`);
  assert.ok(store.devices(r.id).every((d) => d.state === 'active'));
  assert.equal(new Set(sent).size, N, 'each device sent once');
  svc.stop();
});

test('after stop(), an evaluation a device event asked for never runs (it would read the closed database)', async () => {
  const errors: string[] = [];
  const { db, store, svc } = fixture(1, createLogger({ level: 'error', sink: (line) => void errors.push(line) }));
  const r = svc.create(RolloutCreateSchema.parse({ models: [{ ...model, profileId: 'generic-cpu' }] }));
  await waitFor('sent', () => store.devices(r.id)[0]!.state === 'sent', 10_000, 10);
  await svc.onInstallState('dev-0000', model, 'downloading', null, r.id);
  const n = svc.evaluations;
  svc.stop();
  db.close();
  // the requested evaluation would read the closed database (and log its failure): it must not run
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(svc.evaluations, n);
  assert.deepEqual(errors, []);
});

// The tick used to evaluate every running rollout every second, each evaluation reading all its device rows (15 ms at
// 10,000 devices): it now evaluates one only when something could be decided: a write since the last evaluation, a
// timeout come due, or TICK_RECHECK_MS passed
test('the tick evaluates a running rollout only after a change, a timeout come due, or the recheck interval', async () => {
  let clock = 1_000_000;
  const { store, svc, sent } = fixture(20, silentLogger, () => clock);
  const r = svc.create(RolloutCreateSchema.parse({ models: [{ ...model, profileId: 'generic-cpu' }], waves: { canary: { count: 1 }, then: { percents: [100] } }, gates: { deviceTimeoutSeconds: 60 } }));
  await waitFor('the canary sent', () => sent.length === 1, 10_000, 10);
  const settle = async () => {
    // what the create's evaluation wrote (the send) is looked at once
    await svc.tick();
    const n = svc.evaluations;
    for (let i = 0; i < 5; i++) await svc.tick();
    return n;
  };
  let n = await settle();
  assert.equal(svc.evaluations, n, 'nothing changed: five ticks, no evaluation');

  // a device report asks for its own evaluation; the tick leaves the rollout to it, then has nothing to add
  await svc.onInstallState(sent[0]!, model, 'downloading', null, r.id);
  await svc.tick();
  assert.equal(svc.evaluations, n, 'the requested evaluation is pending: the tick waits for it');
  await waitFor('the requested evaluation', () => svc.evaluations === n + 1, 10_000, 10);
  n = await settle();
  assert.equal(svc.evaluations, n);

  // a write the service did not make (another rollout taking a device over) is seen at the next tick
  store.updateDevice(r.id, 'dev-0005', { reason: 'touched' }, clock);
  await svc.tick();
  assert.equal(svc.evaluations, n + 1, 'a write since the last evaluation');
  n = await settle();

  // the recheck interval
  clock += TICK_RECHECK_MS;
  await svc.tick();
  assert.equal(svc.evaluations, n + 1, 'evaluated again after TICK_RECHECK_MS');
  n = await settle();

  // the canary's timeout comes due: the tick evaluates and times it out (the gate then fails the rollout)
  assert.equal(store.device(r.id, sent[0]!)!.state, 'downloading');
  clock = store.device(r.id, sent[0]!)!.sentAt! + 60_000 + 1;
  await svc.tick();
  assert.ok(svc.evaluations > n);
  assert.equal(store.device(r.id, sent[0]!)!.state, 'timed-out');
  assert.ok(svc.tickSkips > 0);
  svc.stop();
});
