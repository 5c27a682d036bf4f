import { randomBytes } from 'node:crypto';
import type { BenchmarkResult, InstallState, ModelRef } from '../../shared/messages.ts';
import type { RolloutCreate } from '../../shared/rollouts.ts';
import type { Logger } from '../log.ts';
import type { DeviceFacts } from '../../shared/facts.ts';
import type { DeviceStore } from '../store/devices.ts';
import { RolloutError } from './errors.ts';
import type { RolloutDeviceRow, RolloutRow, RolloutStore } from './rollout-store.ts';
import { assignWaves, onDeviceEvent, planWaves, step, timeoutDue, type Action, type DeviceDecision } from './state-machine.ts';

/** What rollouts need from the registry and from delivery; wired in control-plane/rollouts/index.ts. */
export type RolloutPorts = {
  modelInfo(model: ModelRef): { profileId: string | null; centralAccuracy: number | null } | null;
  /** Whether the registry holds this model (any version when `version` is null): reports on unknown ids are 404s. */
  modelKnown(modelId: string, version: number | null): boolean;
  deploy(deviceId: string, model: ModelRef, profileId: string, rolloutId: string): Promise<void>;
  rollback(deviceId: string, rolloutId: string, to: ModelRef | null): Promise<void>;
  /** p50 (ms) the device measured on a model it ran before, for the latency-regression gate. */
  p50On(deviceId: string, model: ModelRef): number | null;
  /**
   * For one model, a check of a device's CPU: why the model's recipe was not built for it (e.g. full 8-bit weights
   * on AVX2 without VNNI after a profile override), or null; null when the model has no recipe to check. The model
   * is looked up once per rollout, the check runs per device. The device still gets the model and measures it.
   */
  kernelWarning?(model: ModelRef): ((facts: DeviceFacts | null) => string | null) | null;
};

/** The longest the periodic tick leaves a running rollout with nothing new unevaluated (see `tick`). */
export const TICK_RECHECK_MS = 10_000;

/** The least time between a device event and the evaluation it asks for (see `requestEvaluate`). */
export const EVALUATE_COALESCE_MS = 100;

/**
 * Runs rollouts: creates the plan, feeds device reports into the state machine and carries out what
 * it decides (send, time out, advance, abort, roll back, complete). Every decision is persisted
 * before it is acted on, so a restart resumes where it stopped.
 */
export class RolloutService {
  constructor(
    private readonly store: RolloutStore,
    private readonly devices: DeviceStore,
    private readonly ports: RolloutPorts,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /**
   * Plans and starts a rollout. A device it targets that an older rollout has not finished with (pending or in
   * flight there) is taken over: that rollout lets it go (`RolloutStore.takeOver`), so two rollouts never both send
   * it their model and the newer one's model is the one it ends on.
   */
  create(spec: RolloutCreate): RolloutRow {
    const models = spec.models.map((m, i) => {
      const info = this.ports.modelInfo(m);
      if (!info) throw new RolloutError('invalid', `model ${m.modelId} version ${m.version} is not in the registry`, `models.${i}`);
      if (info.profileId !== null && info.profileId !== m.profileId) {
        throw new RolloutError(
          'invalid',
          `${m.modelId} v${m.version} was quantized with the recipe of profile "${info.profileId}", not "${m.profileId}": each profile's devices run their own int8 recipe ` +
            `(activation/weight types, per-channel scales, runtime), so a model is built per profile. Train one for it: a job spec with "profiles": ["${m.profileId}"] ` +
            `(edgefleet train job.json, or POST /training-jobs), then roll out the version that job registers; see the README, "Models are built per recipe".`,
          `models.${i}.profileId`,
        );
      }
      return m;
    });
    const targets = this.devices.ofProfiles(models.map((m) => m.profileId)).filter((d) => Object.entries(spec.labels).every(([k, v]) => d.labels[k] === v));
    const sizes = planWaves(targets.length, spec.waves);
    const waveOf = assignWaves(
      targets.map((d) => d.id),
      sizes,
    );
    const id = `ro-${randomBytes(5).toString('hex')}`;
    const now = this.now();
    const { takenOver } = this.store.create(
      { id, name: spec.name, spec, waveSizes: sizes },
      targets.map((d) => {
        const m = models.find((x) => x.profileId === d.profileId)!;
        return { deviceId: d.id, profileId: d.profileId!, modelId: m.modelId, modelVersion: m.version, previousModel: d.currentModel, wave: waveOf.get(d.id)! };
      }),
      now,
    );
    // a recipe sent to a CPU it was not built for (profile override): said in the rollout's answer and events, per device;
    // each model's recipe is looked up once, then checked against each of its devices' CPUs
    const checks = new Map(models.map((m) => [m.profileId, this.ports.kernelWarning?.({ modelId: m.modelId, version: m.version }) ?? null]));
    for (const d of targets) {
      const m = models.find((x) => x.profileId === d.profileId)!;
      const warning = checks.get(m.profileId)?.(d.facts) ?? null;
      if (warning === null) continue;
      this.store.event(id, 'kernel-warning', d.id, warning, now);
      this.log.warn('rollout sends a recipe to a CPU it was not built for', { rolloutId: id, deviceId: d.id, modelId: m.modelId, warning });
    }
    this.log.info('rollout created', { rolloutId: id, devices: targets.length, waves: sizes, takenOver });
    void this.evaluate(id);
    return this.store.get(id)!;
  }

  pause(id: string): RolloutRow {
    const r = this.mustGet(id);
    if (r.state !== 'running') throw new RolloutError('conflict', `rollout ${id} is ${r.state}, not running`);
    this.store.setState(id, 'paused', this.now());
    this.store.event(id, 'paused', null, null, this.now());
    return this.store.get(id)!;
  }

  resume(id: string): RolloutRow {
    const r = this.mustGet(id);
    if (r.state !== 'paused') throw new RolloutError('conflict', `rollout ${id} is ${r.state}, not paused`);
    this.store.setState(id, 'running', this.now());
    this.store.event(id, 'resumed', null, null, this.now());
    void this.evaluate(id);
    return this.store.get(id)!;
  }

  async abort(id: string, reason = 'aborted by operator'): Promise<RolloutRow> {
    const r = this.mustGet(id);
    if (r.state !== 'running' && r.state !== 'paused') throw new RolloutError('conflict', `rollout ${id} is already ${r.state}`);
    await this.apply(r, [{ kind: 'abort', reason }]);
    return this.store.get(id)!;
  }

  /** Manual rollback: every device on the new model goes back to the one it had before. */
  async rollback(id: string): Promise<RolloutRow> {
    const r = this.mustGet(id);
    if (r.state === 'rolled-back') throw new RolloutError('conflict', `rollout ${id} is already rolled back`);
    const now = this.now();
    this.store.setState(id, 'rolled-back', now, r.abortReason ?? 'rolled back by operator');
    this.store.event(id, 'rollback', null, 'by operator', now);
    for (const d of this.store.devices(id)) if (this.runsNewModel(d)) await this.sendRollback(r, d);
    return this.store.get(id)!;
  }

  get(id: string): RolloutRow | null {
    return this.store.get(id);
  }

  /** Install states from the agents (via delivery). */
  async onInstallState(deviceId: string, model: ModelRef, state: InstallState, reason: string | null, rolloutId: string | null): Promise<void> {
    const d = this.match(deviceId, model, rolloutId);
    if (!d) return;
    await this.carryOut(d.rolloutId, d.row, onDeviceEvent(d.row, { kind: 'install', state, reason, sameModel: d.sameModel, model: `${model.modelId} v${model.version}` }, this.store.get(d.rolloutId)!.gates));
  }

  async onBenchmark(deviceId: string, model: ModelRef, result: BenchmarkResult, baseline: BenchmarkResult | null, rolloutId: string | null): Promise<void> {
    const d = this.match(deviceId, model, rolloutId);
    if (!d || !d.sameModel) return;
    const r = this.store.get(d.rolloutId)!;
    const event = {
      kind: 'benchmark' as const,
      p50Ms: result.latencyMs.p50,
      accuracy: result.accuracy,
      speedup: baseline && result.latencyMs.p50 > 0 ? baseline.latencyMs.p50 / result.latencyMs.p50 : null,
      previousP50Ms: d.row.previousModel ? this.ports.p50On(deviceId, d.row.previousModel) : null,
      centralAccuracy: this.ports.modelInfo(model)?.centralAccuracy ?? null,
    };
    await this.carryOut(d.rolloutId, d.row, onDeviceEvent(d.row, event, r.gates));
  }

  /** Persists what the state machine decided about one device, then acts on it. */
  private async carryOut(rolloutId: string, row: RolloutDeviceRow, decision: DeviceDecision): Promise<void> {
    const now = this.now();
    if (decision.patch) this.store.updateDevice(rolloutId, row.deviceId, decision.patch, now);
    for (const e of decision.events) this.store.event(rolloutId, e.kind, row.deviceId, e.detail, now);
    for (const a of decision.actions) {
      if (a.kind === 'rollback') await this.sendRollback(this.store.get(rolloutId)!, row);
      else this.requestEvaluate(rolloutId);
    }
  }

  /**
   * A device that registers (or comes back) after a rollout started gets its model: the model of the newest rollout
   * that targets it (its profile, its labels; running, paused or succeeded). Older rollouts that also target it are
   * superseded for it: it neither joins them nor is sent their model again (a late device used to join every one and
   * could end on the oldest model, sent last). One that is aborted or rolled back takes nobody, so the one before it
   * is followed again.
   */
  async onBirth(deviceId: string): Promise<void> {
    // every reconnect is a birth: the rollouts come from memory (RolloutStore.takers), and with none that could take
    // a device its row is not read at all
    const rollouts = this.store.takers();
    if (!rollouts.length) return;
    const dev = this.devices.get(deviceId);
    if (!dev || dev.revokedAt !== null || !dev.profileId) return;
    const profileId = dev.profileId;
    const r = rollouts.find((x) => x.spec.models.some((m) => m.profileId === profileId) && Object.entries(x.spec.labels).every(([k, v]) => dev.labels[k] === v));
    if (!r) return;
    const m = r.spec.models.find((x) => x.profileId === profileId)!;
    const now = this.now();
    const existing = this.store.device(r.id, deviceId);
    if (!existing) {
      const wave = r.state === 'succeeded' ? r.waveSizes.length - 1 : r.currentWave;
      this.store.addDevice(r.id, { deviceId, profileId, modelId: m.modelId, modelVersion: m.version, previousModel: dev.currentModel, wave }, now);
      // an older rollout may still hold it (it targeted the device by labels it no longer has)
      const taken = this.store.takeOver(r.id, deviceId, now);
      this.store.event(r.id, 'device-joined', deviceId, `late device added to wave ${wave}${taken.length ? `, taken over from ${taken.map((t) => t.rolloutId).join(', ')}` : ''}`, now);
      if (r.state === 'succeeded') await this.send(r, deviceId);
      else this.requestEvaluate(r.id);
    } else if (['sent', 'downloading', 'verifying'].includes(existing.state) && !(dev.currentModel?.modelId === m.modelId && dev.currentModel.version === m.version)) {
      // back online mid-install: ask again (the agent resumes its partial download)
      await this.send(r, deviceId);
    }
  }

  /**
   * Periodic: timeouts and anything a lost event left undone. An evaluation reads every device row of the rollout
   * (about 15 ms at 10,000 devices), so a running rollout is evaluated here only when it could decide something new:
   * never evaluated by this process, written to since its last evaluation (`RolloutStore.changeCount`), an in-flight
   * device's timeout come due, or `TICK_RECHECK_MS` passed. One with an evaluation already requested waits for that.
   */
  async tick(): Promise<void> {
    const running = this.store.list('running');
    const now = this.now();
    const live = new Set(running.map((r) => r.id));
    for (const kept of [this.seen, this.lastEvaluateMs]) for (const id of kept.keys()) if (!live.has(id)) kept.delete(id);
    for (const r of running) {
      const s = this.seen.get(r.id);
      if (this.requested.has(r.id) || (s && s.changes === this.store.changeCount(r.id) && now < s.due && now - s.at < TICK_RECHECK_MS)) {
        this.tickSkips++;
        continue;
      }
      await this.evaluate(r.id);
    }
  }

  private stopped = false;

  /** The control plane is stopping: decide nothing more (the next start resumes from SQLite). */
  stop(): void {
    this.stopped = true;
    for (const t of this.requested.values()) clearTimeout(t);
    this.requested.clear();
  }

  private mustGet(id: string): RolloutRow {
    const r = this.store.get(id);
    if (!r) throw new RolloutError('not-found', `rollout "${id}" not found`);
    return r;
  }

  private match(deviceId: string, model: ModelRef, rolloutId: string | null): { rolloutId: string; row: RolloutDeviceRow; sameModel: boolean } | null {
    const ids = rolloutId ? [rolloutId] : this.store.activeForDevice(deviceId).filter((a) => a.modelId === model.modelId && a.modelVersion === model.version).map((a) => a.rolloutId);
    for (const id of ids) {
      const row = this.store.device(id, deviceId);
      if (!row) continue;
      const sameModel = row.modelId === model.modelId && row.modelVersion === model.version;
      // reports about another model only count when they name this rollout (a rollback restoring the old one)
      if (sameModel || rolloutId) return { rolloutId: id, row, sameModel };
    }
    return null;
  }

  private runsNewModel(d: RolloutDeviceRow): boolean {
    return d.state === 'active' || (d.state === 'failed' && d.installed);
  }

  private evaluating = new Set<string>();

  /** Rollouts asked to evaluate again while an evaluation of theirs was running: it runs once more when done. */
  private again = new Set<string>();
  /** Device events waiting for the evaluation they asked for (one timer per rollout). */
  private requested = new Map<string, NodeJS.Timeout>();
  /** How long the last evaluation of each rollout took (ms): requested ones are spaced by it. */
  private lastEvaluateMs = new Map<string, number>();
  /** Evaluations run (each reads the rollout's devices): tests bound it. */
  evaluations = 0;
  /** Running rollouts the tick left alone (nothing new to decide). */
  tickSkips = 0;
  /**
   * What the last complete evaluation of each running rollout saw: the store's change count before it read the
   * devices, when it ran, and when the first of its in-flight devices times out (Infinity: none in flight).
   */
  private seen = new Map<string, { changes: number; at: number; due: number }>();

  /**
   * A device event asks for an evaluation: the events of a burst share one. An evaluation reads every device of the
   * rollout (step() looks at the whole wave and the gates at every wave so far), so one per report made a rollout
   * quadratic in its size: 10,000 devices, 50 ms per report, the control plane busy for the whole rollout. A requested
   * evaluation runs `EVALUATE_COALESCE_MS` after the first request of a burst, or 9 x the rollout's last evaluation
   * when that is longer (at most 5 s), so evaluating takes about a tenth of the event loop at most; the periodic tick
   * stays behind it.
   */
  private requestEvaluate(id: string): void {
    if (this.stopped || this.requested.has(id)) return;
    const delay = Math.min(5000, Math.max(EVALUATE_COALESCE_MS, 9 * (this.lastEvaluateMs.get(id) ?? 0)));
    const t = setTimeout(() => {
      this.requested.delete(id);
      void this.evaluate(id).catch((e: unknown) => this.log.error('rollout evaluation failed', { rolloutId: id, error: String(e) }));
    }, delay);
    t.unref();
    this.requested.set(id, t);
  }

  async evaluate(id: string): Promise<void> {
    if (this.stopped) return;
    if (this.evaluating.has(id)) {
      // one evaluation per rollout at a time; what this call would have seen is looked at when the running one ends
      this.again.add(id);
      return;
    }
    this.evaluating.add(id);
    try {
      for (let guard = 0; guard < 50 && !this.stopped; guard++) {
        const r = this.store.get(id);
        if (!r) return;
        const t0 = performance.now();
        this.evaluations++;
        const changes = this.store.changeCount(id);
        const now = this.now();
        const devices = this.store.stepDevices(id);
        const actions = step(r, devices, now);
        this.lastEvaluateMs.set(id, performance.now() - t0);
        await this.apply(r, actions);
        // recorded once what it decided is carried out (a throw leaves the next tick to try again); what apply wrote
        // moves the change count past `changes`, so the next tick looks once more
        this.seen.set(id, { changes, at: now, due: timeoutDue(r, devices, actions, now) });
        if (!actions.some((a) => a.kind === 'advance')) return;
      }
    } finally {
      this.evaluating.delete(id);
      if (this.again.delete(id)) this.requestEvaluate(id);
    }
  }

  private async apply(r: RolloutRow, actions: Action[]): Promise<void> {
    const now = this.now();
    for (const a of actions) {
      switch (a.kind) {
        case 'send':
          await this.send(r, a.deviceId);
          break;
        case 'timeout':
          this.store.updateDevice(r.id, a.deviceId, { state: 'timed-out', reason: `no result within ${r.gates.deviceTimeoutSeconds} s` }, now);
          this.store.event(r.id, 'device-timeout', a.deviceId, null, now);
          break;
        case 'advance':
          this.store.setWave(r.id, a.toWave, now);
          this.store.event(r.id, 'wave', null, `wave ${a.toWave} started`, now);
          this.log.info('rollout wave', { rolloutId: r.id, wave: a.toWave });
          break;
        case 'abort':
          this.store.setState(r.id, 'aborted', now, a.reason);
          this.store.event(r.id, 'aborted', null, a.reason, now);
          this.log.warn('rollout aborted', { rolloutId: r.id, reason: a.reason });
          if (r.rollbackOnAbort) {
            for (const d of this.store.devices(r.id)) if (this.runsNewModel(d) && !actions.some((x) => x.kind === 'rollback' && x.deviceId === d.deviceId)) await this.sendRollback(r, d);
          }
          break;
        case 'rollback': {
          const d = this.store.device(r.id, a.deviceId);
          if (d) await this.sendRollback(r, d);
          break;
        }
        case 'complete':
          this.store.setState(r.id, 'succeeded', now);
          this.store.event(r.id, 'succeeded', null, null, now);
          this.log.info('rollout succeeded', { rolloutId: r.id });
          break;
      }
    }
  }

  private async send(r: RolloutRow, deviceId: string): Promise<void> {
    const d = this.store.device(r.id, deviceId);
    if (!d) return;
    try {
      await this.ports.deploy(deviceId, { modelId: d.modelId, version: d.modelVersion }, d.profileId, r.id);
    } catch (e) {
      // cut short by shutdown: the device stays pending and is sent after the restart
      if (this.stopped) return;
      this.store.updateDevice(r.id, deviceId, { state: 'failed', reason: `deploy could not be sent: ${(e as Error).message}` }, this.now());
      return;
    }
    const now = this.now();
    // recorded after the publish: a restart in between sends it again, which the agent takes as a resume
    if (this.store.device(r.id, deviceId)?.state === d.state) this.store.updateDevice(r.id, deviceId, { state: 'sent', sentAt: now }, now);
    else this.store.updateDevice(r.id, deviceId, { sentAt: now }, now);
    this.store.event(r.id, 'device-sent', deviceId, `${d.modelId} v${d.modelVersion}`, now);
  }

  private async sendRollback(r: RolloutRow, d: RolloutDeviceRow): Promise<void> {
    const now = this.now();
    this.store.event(r.id, 'device-rollback', d.deviceId, d.previousModel ? `to ${d.previousModel.modelId} v${d.previousModel.version}` : 'to no model', now);
    try {
      await this.ports.rollback(d.deviceId, r.id, d.previousModel);
    } catch (e) {
      this.log.error('rollback could not be sent', { rolloutId: r.id, deviceId: d.deviceId, error: (e as Error).message });
    }
  }
}
