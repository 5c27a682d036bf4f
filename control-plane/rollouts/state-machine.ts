import type { Gates, Waves } from '../../shared/rollouts.ts';

/**
 * The rollout state machine: plain functions over plain data, no clock, no I/O. The service feeds it
 * the rollout, its devices and `now`, and carries out the actions it returns.
 */

export type RolloutState = 'running' | 'paused' | 'succeeded' | 'aborted' | 'rolled-back';
export type DeviceRolloutState = 'pending' | 'sent' | 'downloading' | 'verifying' | 'benchmarking' | 'active' | 'failed' | 'timed-out' | 'rolled-back';

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
const IN_FLIGHT: ReadonlySet<DeviceRolloutState> = new Set(['sent', 'downloading', 'verifying', 'benchmarking']);

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

/** The failure gate over one wave's devices. */
export function failureGate(devices: readonly RolloutDevice[], gates: Gates): GateVerdict {
  const finished = devices.filter((d) => FINISHED.has(d.state) && d.state !== 'rolled-back');
  const failed = finished.filter((d) => FAILED.has(d.state));
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
 * it fails, or null.
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
  return null;
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
