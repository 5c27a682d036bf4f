import type { InstallState } from '../../shared/messages.ts';
import type { Gates, Waves } from '../../shared/rollouts.ts';
import type { ROLLOUT_DEVICE_STATES } from '../../shared/api/rollouts.ts';

/**
 * The rollout state machine: plain functions over plain data, no clock, no I/O. The service feeds it
 * the rollout, its devices and `now`, and carries out the actions it returns.
 */

export type RolloutState = 'running' | 'paused' | 'succeeded' | 'aborted' | 'rolled-back';
/** A device's state in a rollout (the API's `?state` accepts the same list). */
export type DeviceRolloutState = (typeof ROLLOUT_DEVICE_STATES)[number];

export type RolloutDevice = {
  deviceId: string;
  profileId: string;
  wave: number;
  state: DeviceRolloutState;
  sentAt: number | null;
  /** Why a device failed (install failure, gate on its own numbers, timeout). */
  reason: string | null;
};

export type Rollout = {
  id: string;
  state: RolloutState;
  currentWave: number;
  waveSizes: number[];
  gates: Gates;
  rollbackOnAbort: boolean;
  abortReason: string | null;
};

export type Action =
  | { kind: 'send'; deviceId: string }
  | { kind: 'timeout'; deviceId: string }
  | { kind: 'advance'; toWave: number }
  | { kind: 'abort'; reason: string }
  | { kind: 'rollback'; deviceId: string }
  | { kind: 'complete' };

export const FINISHED: ReadonlySet<DeviceRolloutState> = new Set(['active', 'failed', 'timed-out', 'rolled-back']);
export const FAILED: ReadonlySet<DeviceRolloutState> = new Set(['failed', 'timed-out']);
/** Sent and not yet finished: what the device timeout applies to. */
export const IN_FLIGHT: ReadonlySet<DeviceRolloutState> = new Set(['sent', 'downloading', 'verifying', 'benchmarking']);

/** Wave sizes (not cumulative) for `total` devices. Every device lands in exactly one wave. */
export function planWaves(total: number, waves: Waves): number[] {
  if (total <= 0) return [];
  const canary = Math.min(total, 'count' in waves.canary ? waves.canary.count : Math.max(1, Math.ceil((total * waves.canary.percent) / 100)));
  const sizes = [canary];
  let covered = canary;
  if ('percents' in waves.then) {
    for (const p of waves.then.percents) {
      const upTo = Math.min(total, Math.max(covered, Math.ceil((total * p) / 100)));
      if (upTo > covered) {
        sizes.push(upTo - covered);
        covered = upTo;
      }
    }
  } else {
    let next = canary;
    while (covered < total) {
      next = Math.max(next + 1, Math.ceil(next * waves.then.factor));
      const add = Math.min(total - covered, next - covered > 0 ? next - covered : 1);
      sizes.push(add);
      covered += add;
    }
  }
  if (covered < total) sizes.push(total - covered);
  return sizes;
}

/** Assigns devices (sorted by id, for a stable plan) to waves. */
export function assignWaves(deviceIds: readonly string[], sizes: readonly number[]): Map<string, number> {
  const out = new Map<string, number>();
  const sorted = [...deviceIds].sort();
  let i = 0;
  sizes.forEach((size, wave) => {
    for (let k = 0; k < size && i < sorted.length; k++) out.set(sorted[i++]!, wave);
  });
  return out;
}

export type GateVerdict = { tripped: false } | { tripped: true; reason: string };

/**
 * Whether a device counts as failed for the gate. One that failed (its own gate, an install error, a timeout) and was
 * then taken back to its previous model is `rolled-back` with the reason it failed, and still a failure: otherwise a
 * canary whose rollback completed before the next evaluation would vanish from the gate and its wave pass.
 */
const failedForGate = (d: RolloutDevice): boolean => FAILED.has(d.state) || (d.state === 'rolled-back' && d.reason !== null);

/**
 * The failure gate over one wave's devices. A device rolled back without a reason (by an abort or an operator: it ran
 * the model) counts neither way.
 */
export function failureGate(devices: readonly RolloutDevice[], gates: Gates): GateVerdict {
  const finished = devices.filter((d) => (FINISHED.has(d.state) && d.state !== 'rolled-back') || failedForGate(d));
  const failed = finished.filter(failedForGate);
  if (finished.length < gates.minFinished || failed.length === 0) return { tripped: false };
  const pct = (failed.length / finished.length) * 100;
  if (pct > gates.maxFailurePercent) {
    const why = [...new Set(failed.map((d) => d.reason ?? d.state))].slice(0, 3).join('; ');
    return { tripped: true, reason: `${failed.length} of ${finished.length} finished devices failed (${pct.toFixed(0)}% > ${gates.maxFailurePercent}%): ${why}` };
  }
  return { tripped: false };
}

/**
 * Judges one device's benchmark against the gates that concern its own numbers. Returns the reason
 * it fails, or null. The accuracy floor uses the device's own accuracy, or the model's central one
 * when the device cannot measure it (trtexec runs on random data); with neither it cannot pass.
 */
export function deviceMeasurementVerdict(
  m: { p50Ms: number; accuracy: number | null; previousP50Ms: number | null; centralAccuracy: number | null },
  gates: Gates,
): string | null {
  if (gates.maxLatencyRegressionPercent !== null && m.previousP50Ms !== null && m.previousP50Ms > 0) {
    const regression = ((m.p50Ms - m.previousP50Ms) / m.previousP50Ms) * 100;
    if (regression > gates.maxLatencyRegressionPercent) {
      return `latency regression ${regression.toFixed(0)}% (p50 ${m.p50Ms.toFixed(2)} ms vs ${m.previousP50Ms.toFixed(2)} ms) > ${gates.maxLatencyRegressionPercent}%`;
    }
  }
  if (gates.maxAccuracyDrop !== null && m.accuracy !== null && m.centralAccuracy !== null) {
    const drop = m.centralAccuracy - m.accuracy;
    if (drop > gates.maxAccuracyDrop) {
      return `accuracy drop ${(drop * 100).toFixed(1)} points (device ${(m.accuracy * 100).toFixed(1)}% vs central ${(m.centralAccuracy * 100).toFixed(1)}%) > ${(gates.maxAccuracyDrop * 100).toFixed(1)}`;
    }
  }
  if (gates.minAccuracy !== null) {
    const acc = m.accuracy ?? m.centralAccuracy;
    const source = m.accuracy !== null ? 'device eval-set accuracy' : 'central accuracy (the device measured none)';
    if (acc === null) return `no accuracy to hold against the floor of ${(gates.minAccuracy * 100).toFixed(1)}% (neither the device nor the registry measured one)`;
    if (acc < gates.minAccuracy) return `${source} ${(acc * 100).toFixed(1)}% is below the floor of ${(gates.minAccuracy * 100).toFixed(1)}%`;
  }
  return null;
}

/** What the service knows of one device in one rollout when an event about it arrives. */
export type DeviceProgress = { state: DeviceRolloutState; installed: boolean; measured: boolean };

/** An event from a device, already matched to one rollout device. */
export type DeviceEvent =
  /** An install-state report; `sameModel` is false when it concerns the device's previous model (a rollback finishing). */
  | { kind: 'install'; state: InstallState; reason: string | null; sameModel: boolean; model: string }
  /** The device's own benchmark of the rollout's model, with what the gates compare it against. */
  | { kind: 'benchmark'; p50Ms: number; accuracy: number | null; speedup: number | null; previousP50Ms: number | null; centralAccuracy: number | null };

export type DevicePatch = { state?: DeviceRolloutState; reason?: string | null; installed?: boolean; measured?: boolean; p50Ms?: number; accuracy?: number | null; speedup?: number | null };
/** `rollback`: send the device back to its previous model; `evaluate`: run step() for the rollout. */
export type DeviceAction = { kind: 'rollback' } | { kind: 'evaluate' };
export type DeviceDecision = { patch: DevicePatch | null; events: { kind: string; detail: string | null }[]; actions: DeviceAction[] };

const INSTALL_TO_ROLLOUT: Partial<Record<InstallState, DeviceRolloutState>> = {
  queued: 'sent',
  downloading: 'downloading',
  verifying: 'verifying',
  benchmarking: 'benchmarking',
  failed: 'failed',
  'rolled-back': 'rolled-back',
};

const NOTHING: DeviceDecision = { patch: null, events: [], actions: [] };
const EVALUATE: DeviceAction = { kind: 'evaluate' };

/**
 * One device event into a patch of its rollout row, the events to record and what to do. A device
 * counts as active only once it reported the model active AND its own measurements passed the gates;
 * a device that fails its gate goes back to its previous model as soon as it runs the new one.
 */
export function onDeviceEvent(row: DeviceProgress, event: DeviceEvent, gates: Gates): DeviceDecision {
  if (event.kind === 'benchmark') {
    const verdict = deviceMeasurementVerdict({ p50Ms: event.p50Ms, accuracy: event.accuracy, previousP50Ms: event.previousP50Ms, centralAccuracy: event.centralAccuracy }, gates);
    const measured = { measured: true, p50Ms: event.p50Ms, accuracy: event.accuracy, speedup: event.speedup };
    if (verdict) {
      // one that has not switched over yet goes back when it reports active
      return { patch: { ...measured, state: 'failed', reason: verdict }, events: [{ kind: 'device-gate', detail: verdict }], actions: row.installed ? [{ kind: 'rollback' }, EVALUATE] : [EVALUATE] };
    }
    return {
      patch: { ...measured, ...(row.installed && !FINISHED.has(row.state) ? { state: 'active' as const } : {}) },
      events: [{ kind: 'device-measured', detail: `p50 ${event.p50Ms.toFixed(3)} ms` }],
      actions: [EVALUATE],
    };
  }
  if (!event.sameModel) {
    // the agent reactivated its previous model for this rollout: that is the rollback finishing
    if (event.state !== 'active' && event.state !== 'rolled-back') return NOTHING;
    return { patch: { state: 'rolled-back' }, events: [{ kind: 'device-rolled-back', detail: `${event.model} active again` }], actions: [EVALUATE] };
  }
  const recorded = { kind: `device-${event.state}`, detail: event.reason };
  if (event.state === 'active') {
    const settled = FINISHED.has(row.state);
    return {
      patch: { installed: true, ...(row.measured && !settled ? { state: 'active' as const } : {}) },
      events: [recorded],
      // it failed its gate before it switched over: now that it has, take it back
      actions: row.state === 'failed' && row.measured ? [{ kind: 'rollback' }, EVALUATE] : [EVALUATE],
    };
  }
  const next = INSTALL_TO_ROLLOUT[event.state];
  if (!next || FINISHED.has(row.state)) {
    // a finished device only moves on to rolled-back; other late reports change nothing
    return next === 'rolled-back' ? { patch: { state: 'rolled-back' }, events: [recorded], actions: [EVALUATE] } : NOTHING;
  }
  return { patch: { state: next, ...(next === 'failed' ? { reason: event.reason ?? 'install failed' } : {}) }, events: [recorded], actions: [EVALUATE] };
}

/**
 * When the first in-flight device of a rollout times out, from the rows an evaluation read and what it decided: a
 * device it sends now is in flight from now on (its sent time is written when it is sent, at or after `now`).
 */
export function timeoutDue(r: Rollout, devices: readonly RolloutDevice[], actions: readonly Action[], now: number): number {
  const timeoutMs = r.gates.deviceTimeoutSeconds * 1000;
  let first = actions.some((a) => a.kind === 'send') ? now : Infinity;
  for (const d of devices) if (IN_FLIGHT.has(d.state) && d.sentAt !== null && d.sentAt < first) first = d.sentAt;
  // step() times a device out when now - sentAt > timeout
  return first + timeoutMs + 1;
}

/**
 * One step: what to do now. Sends the current wave's pending devices, times out slow ones, trips
 * the gate, advances or completes. Paused and finished rollouts do nothing.
 */
export function step(rollout: Rollout, devices: readonly RolloutDevice[], now: number): Action[] {
  if (rollout.state !== 'running') return [];
  const actions: Action[] = [];
  const wave = devices.filter((d) => d.wave === rollout.currentWave);
  const timeoutMs = rollout.gates.deviceTimeoutSeconds * 1000;
  const effective = wave.map((d) => {
    if (IN_FLIGHT.has(d.state) && d.sentAt !== null && now - d.sentAt > timeoutMs) {
      actions.push({ kind: 'timeout', deviceId: d.deviceId });
      return { ...d, state: 'timed-out' as const, reason: `no result within ${rollout.gates.deviceTimeoutSeconds} s` };
    }
    return d;
  });
  // the gate looks at every wave so far: a late failure in the canary still counts
  const sofar = devices.filter((d) => d.wave < rollout.currentWave).concat(effective);
  const verdict = failureGate(sofar, rollout.gates);
  if (verdict.tripped) {
    actions.push({ kind: 'abort', reason: verdict.reason });
    if (rollout.rollbackOnAbort) for (const d of sofar) if (d.state === 'active') actions.push({ kind: 'rollback', deviceId: d.deviceId });
    return actions;
  }
  for (const d of effective) if (d.state === 'pending') actions.push({ kind: 'send', deviceId: d.deviceId });
  const waveDone = effective.length > 0 ? effective.every((d) => FINISHED.has(d.state)) : true;
  if (waveDone) {
    const later = devices.some((d) => d.wave > rollout.currentWave);
    if (later || rollout.currentWave + 1 < rollout.waveSizes.length) actions.push({ kind: 'advance', toWave: rollout.currentWave + 1 });
    else actions.push({ kind: 'complete' });
  }
  return actions;
}
