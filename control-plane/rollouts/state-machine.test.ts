import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatesSchema, WavesSchema } from '../../shared/rollouts.ts';
import { assignWaves, deviceMeasurementVerdict, failureGate, planWaves, step, type Rollout, type RolloutDevice } from './state-machine.ts';

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

test('deviceMeasurementVerdict: latency regression and accuracy drop', () => {
  const g = GatesSchema.parse({ maxLatencyRegressionPercent: 10, maxAccuracyDrop: 0.02 });
  assert.equal(deviceMeasurementVerdict({ p50Ms: 1.05, previousP50Ms: 1, accuracy: 0.9, centralAccuracy: 0.91 }, g), null);
  assert.match(deviceMeasurementVerdict({ p50Ms: 1.5, previousP50Ms: 1, accuracy: 0.9, centralAccuracy: 0.9 }, g)!, /latency regression 50%/);
  assert.match(deviceMeasurementVerdict({ p50Ms: 1, previousP50Ms: null, accuracy: 0.8, centralAccuracy: 0.9 }, g)!, /accuracy drop 10\.0 points/);
  assert.equal(deviceMeasurementVerdict({ p50Ms: 9, previousP50Ms: 1, accuracy: 0.1, centralAccuracy: 0.9 }, GatesSchema.parse({})), null, 'gates off by default');
});
