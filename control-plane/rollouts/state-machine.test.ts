import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatesSchema, WavesSchema } from '../../shared/rollouts.ts';
import { assignWaves, deviceMeasurementVerdict, failureGate, onDeviceEvent, planWaves, step, type DeviceEvent, type DeviceProgress, type Rollout, type RolloutDevice } from './state-machine.ts';

const gates = GatesSchema.parse({ maxFailurePercent: 20, minFinished: 1, deviceTimeoutSeconds: 60 });
const waves = (w: unknown) => WavesSchema.parse(w);

test('planWaves: canary count then cumulative percents, every device exactly once', () => {
  assert.deepEqual(planWaves(20, waves({ canary: { count: 2 }, then: { percents: [25, 50, 100] } })), [2, 3, 5, 10]);
  assert.deepEqual(planWaves(20, waves({ canary: { percent: 10 }, then: { percents: [100] } })), [2, 18]);
  assert.deepEqual(planWaves(3, waves({ canary: { count: 5 } })), [3]);
  assert.deepEqual(planWaves(0, waves({})), []);
  for (const n of [1, 7, 20, 101]) {
    const sizes = planWaves(n, waves({ canary: { count: 1 }, then: { factor: 2 } }));
    assert.equal(sizes.reduce((a, b) => a + b, 0), n, `factor plan covers ${n}`);
  }
  assert.deepEqual(planWaves(20, waves({ canary: { count: 1 }, then: { factor: 2 } })), [1, 1, 2, 4, 8, 4]);
});

test('waves schema: percents must increase and end at 100', () => {
  assert.ok(!WavesSchema.safeParse({ then: { percents: [50, 25, 100] } }).success);
  assert.ok(!WavesSchema.safeParse({ then: { percents: [10, 50] } }).success);
});

test('assignWaves is stable by device id', () => {
  const a = assignWaves(['d3', 'd1', 'd2'], [1, 2]);
  assert.deepEqual([...a], [['d1', 0], ['d2', 1], ['d3', 1]]);
});

const dev = (id: string, wave: number, state: RolloutDevice['state'], sentAt: number | null = null, reason: string | null = null): RolloutDevice => ({ deviceId: id, profileId: 'p', wave, state, sentAt, reason });
const rollout = (over: Partial<Rollout> = {}): Rollout => ({ id: 'r1', state: 'running', currentWave: 0, waveSizes: [1, 2], gates, rollbackOnAbort: true, abortReason: null, ...over });

test('step: sends the current wave, then advances once it has finished, then completes', () => {
  assert.deepEqual(step(rollout(), [dev('a', 0, 'pending'), dev('b', 1, 'pending'), dev('c', 1, 'pending')], 0), [{ kind: 'send', deviceId: 'a' }]);
  assert.deepEqual(step(rollout(), [dev('a', 0, 'downloading', 0), dev('b', 1, 'pending')], 1000), []);
  assert.deepEqual(step(rollout(), [dev('a', 0, 'active', 0), dev('b', 1, 'pending')], 1000), [{ kind: 'advance', toWave: 1 }]);
  assert.deepEqual(step(rollout({ currentWave: 1 }), [dev('a', 0, 'active'), dev('b', 1, 'active')], 1000), [{ kind: 'complete' }]);
});

test('step: a failed canary trips the gate, aborts and rolls back the devices on the new model', () => {
  const actions = step(rollout({ waveSizes: [2, 2] }), [dev('a', 0, 'failed', 0, 'injected failure'), dev('b', 0, 'active', 0), dev('c', 1, 'pending')], 10);
  assert.equal(actions[0]?.kind, 'abort');
  assert.match((actions[0] as { reason: string }).reason, /1 of 2 finished devices failed \(50% > 20%\): injected failure/);
  assert.deepEqual(actions.slice(1), [{ kind: 'rollback', deviceId: 'b' }]);
  assert.ok(!actions.some((a) => a.kind === 'send'), 'nothing more is sent');
});

test('step: no rollback when the rollout says so; paused rollouts do nothing', () => {
  const actions = step(rollout({ rollbackOnAbort: false }), [dev('a', 0, 'failed', 0, 'x'), dev('b', 0, 'active', 0)], 10);
  assert.deepEqual(actions.map((a) => a.kind), ['abort']);
  assert.deepEqual(step(rollout({ state: 'paused' }), [dev('a', 0, 'pending')], 0), []);
});

test('step: a device silent past the timeout is timed out and counts as a failure', () => {
  const actions = step(rollout(), [dev('a', 0, 'downloading', 0)], 61_000);
  assert.deepEqual(actions[0], { kind: 'timeout', deviceId: 'a' });
  assert.equal(actions[1]?.kind, 'abort');
});

test('failureGate: waits for minFinished; failures under the threshold pass', () => {
  const g = GatesSchema.parse({ maxFailurePercent: 50, minFinished: 3 });
  assert.equal(failureGate([dev('a', 0, 'failed'), dev('b', 0, 'active')], g).tripped, false, 'only 2 finished');
  assert.equal(failureGate([dev('a', 0, 'failed'), dev('b', 0, 'active'), dev('c', 0, 'active')], g).tripped, false, '33% <= 50%');
  assert.equal(failureGate([dev('a', 0, 'failed'), dev('b', 0, 'timed-out'), dev('c', 0, 'active')], g).tripped, true, '67% > 50%');
});

test('failureGate: a device rolled back after it failed still counts as failed; one rolled back by an abort does not count', () => {
  const g = GatesSchema.parse({ maxFailurePercent: 0 });
  const failedThenBack = { ...dev('a', 0, 'rolled-back'), reason: 'accuracy drop 40.0 points' };
  const v = failureGate([failedThenBack], g);
  assert.equal(v.tripped, true, 'the canary failed its gate, then its rollback completed before the next evaluation');
  assert.match(v.tripped ? v.reason : '', /1 of 1 finished devices failed \(100% > 0%\): accuracy drop 40\.0 points/);
  assert.equal(failureGate([dev('b', 0, 'rolled-back'), dev('c', 0, 'active')], g).tripped, false, 'rolled back without a reason: it ran the model');
  // and step() does not move on past such a wave
  const r: Rollout = { id: 'r', state: 'running', currentWave: 0, waveSizes: [1, 2], gates: g, rollbackOnAbort: true, abortReason: null };
  const actions = step(r, [failedThenBack, dev('d', 1, 'pending'), dev('e', 1, 'pending')], 0);
  assert.deepEqual(actions.map((a) => a.kind), ['abort']);
});

test('deviceMeasurementVerdict: latency regression and accuracy drop', () => {
  const g = GatesSchema.parse({ maxLatencyRegressionPercent: 10, maxAccuracyDrop: 0.02 });
  assert.equal(deviceMeasurementVerdict({ p50Ms: 1.05, previousP50Ms: 1, accuracy: 0.9, centralAccuracy: 0.91 }, g), null);
  assert.match(deviceMeasurementVerdict({ p50Ms: 1.5, previousP50Ms: 1, accuracy: 0.9, centralAccuracy: 0.9 }, g)!, /latency regression 50%/);
  assert.match(deviceMeasurementVerdict({ p50Ms: 1, previousP50Ms: null, accuracy: 0.8, centralAccuracy: 0.9 }, g)!, /accuracy drop 10\.0 points/);
  assert.equal(deviceMeasurementVerdict({ p50Ms: 9, previousP50Ms: 1, accuracy: 0.1, centralAccuracy: 0.9 }, GatesSchema.parse({})), null, 'gates off by default');
});

test('deviceMeasurementVerdict: the absolute accuracy floor (minAccuracy)', () => {
  const floor = GatesSchema.parse({ minAccuracy: 0.5 });
  const cases: [string, { accuracy: number | null; centralAccuracy: number | null }, RegExp | null][] = [
    // a model at chance level everywhere: the relative gate sees no drop, the floor does
    ['chance level on device and centrally', { accuracy: 0.11, centralAccuracy: 0.11 }, /device eval-set accuracy 11\.0% is below the floor of 50\.0%/],
    ['above the floor', { accuracy: 0.86, centralAccuracy: 0.87 }, null],
    ['exactly at the floor passes', { accuracy: 0.5, centralAccuracy: 0.9 }, null],
    ['no device accuracy: central one decides (fail)', { accuracy: null, centralAccuracy: 0.2 }, /central accuracy \(the device measured none\) 20\.0% is below/],
    ['no device accuracy: central one decides (pass)', { accuracy: null, centralAccuracy: 0.8 }, null],
    ['no accuracy at all cannot pass a floor', { accuracy: null, centralAccuracy: null }, /no accuracy to hold against the floor of 50\.0%/],
  ];
  for (const [name, m, want] of cases) {
    const v = deviceMeasurementVerdict({ p50Ms: 1, previousP50Ms: null, ...m }, floor);
    if (want === null) assert.equal(v, null, name);
    else assert.match(v ?? '', want, name);
  }
  assert.equal(deviceMeasurementVerdict({ p50Ms: 1, previousP50Ms: null, accuracy: 0.11, centralAccuracy: 0.11 }, GatesSchema.parse({ maxAccuracyDrop: 0.02 })), null, 'without a floor the chance-level model passes the relative gate');
});

test('onDeviceEvent: every install state and benchmark, as patch, events and actions', () => {
  const g = GatesSchema.parse({ maxAccuracyDrop: 0.05, minAccuracy: 0.5 });
  const row = (state: DeviceProgress['state'], installed = false, measured = false): DeviceProgress => ({ state, installed, measured });
  const install = (state: string, sameModel = true, reason: string | null = null): DeviceEvent => ({ kind: 'install', state: state as never, reason, sameModel, model: 'm v1' });
  const bench = (accuracy: number | null, centralAccuracy: number | null = 0.9): DeviceEvent => ({ kind: 'benchmark', p50Ms: 2, accuracy, speedup: 1.5, previousP50Ms: null, centralAccuracy });
  const E = { kind: 'evaluate' } as const;
  const R = { kind: 'rollback' } as const;
  const cases: [string, DeviceProgress, DeviceEvent, ReturnType<typeof onDeviceEvent>][] = [
    ['queued -> sent', row('sent'), install('queued'), { patch: { state: 'sent' }, events: [{ kind: 'device-queued', detail: null }], actions: [E] }],
    ['downloading', row('sent'), install('downloading'), { patch: { state: 'downloading' }, events: [{ kind: 'device-downloading', detail: null }], actions: [E] }],
    ['install failure keeps its reason', row('verifying'), install('failed', true, 'bad signature'), { patch: { state: 'failed', reason: 'bad signature' }, events: [{ kind: 'device-failed', detail: 'bad signature' }], actions: [E] }],
    ['install failure without a reason', row('verifying'), install('failed'), { patch: { state: 'failed', reason: 'install failed' }, events: [{ kind: 'device-failed', detail: null }], actions: [E] }],
    ['active before its benchmark: installed, not active yet', row('benchmarking'), install('active'), { patch: { installed: true }, events: [{ kind: 'device-active', detail: null }], actions: [E] }],
    ['active after a passing benchmark: active', row('benchmarking', false, true), install('active'), { patch: { installed: true, state: 'active' }, events: [{ kind: 'device-active', detail: null }], actions: [E] }],
    ['active after a failed gate: goes back now', row('failed', false, true), install('active'), { patch: { installed: true }, events: [{ kind: 'device-active', detail: null }], actions: [R, E] }],
    ['late progress on a finished device changes nothing', row('active', true, true), install('downloading'), { patch: null, events: [], actions: [] }],
    ['a finished device can still be rolled back', row('active', true, true), install('rolled-back'), { patch: { state: 'rolled-back' }, events: [{ kind: 'device-rolled-back', detail: null }], actions: [E] }],
    ['previous model active again: the rollback finished', row('failed', true, true), install('active', false), { patch: { state: 'rolled-back' }, events: [{ kind: 'device-rolled-back', detail: 'm v1 active again' }], actions: [E] }],
    ['previous model downloading: nothing', row('failed', true, true), install('downloading', false), { patch: null, events: [], actions: [] }],
    ['benchmark passes, installed: active', row('benchmarking', true), bench(0.88), { patch: { measured: true, p50Ms: 2, accuracy: 0.88, speedup: 1.5, state: 'active' }, events: [{ kind: 'device-measured', detail: 'p50 2.000 ms' }], actions: [E] }],
    ['benchmark passes, not switched yet: measured only', row('benchmarking'), bench(0.88), { patch: { measured: true, p50Ms: 2, accuracy: 0.88, speedup: 1.5 }, events: [{ kind: 'device-measured', detail: 'p50 2.000 ms' }], actions: [E] }],
    [
      'benchmark under the floor, installed: failed and rolled back',
      row('benchmarking', true),
      bench(0.11, 0.11),
      { patch: { measured: true, p50Ms: 2, accuracy: 0.11, speedup: 1.5, state: 'failed', reason: 'device eval-set accuracy 11.0% is below the floor of 50.0%' }, events: [{ kind: 'device-gate', detail: 'device eval-set accuracy 11.0% is below the floor of 50.0%' }], actions: [R, E] },
    ],
    [
      'benchmark drop, not switched yet: failed, rolled back when it reports active',
      row('benchmarking'),
      bench(0.8),
      { patch: { measured: true, p50Ms: 2, accuracy: 0.8, speedup: 1.5, state: 'failed', reason: 'accuracy drop 10.0 points (device 80.0% vs central 90.0%) > 5.0' }, events: [{ kind: 'device-gate', detail: 'accuracy drop 10.0 points (device 80.0% vs central 90.0%) > 5.0' }], actions: [E] },
    ],
  ];
  for (const [name, r, e, want] of cases) assert.deepEqual(onDeviceEvent(r, e, g), want, name);
});
