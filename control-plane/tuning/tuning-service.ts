import type { EvaluationReport } from '../../shared/messages.ts';
import type { DeviceProfile, EvaluationSettings } from '../../shared/profile.ts';
import type { ModelVersion, TrainingJobCreate, TrainingJobView } from '../../shared/registry.ts';
import { RolloutCreateSchema } from '../../shared/rollouts.ts';
import { TERMINAL_TUNING_STATES, type DeviceMeasurement, type ProfileDecision, type TuningCreate, type TuningView } from '../../shared/tuning.ts';
import type { DeliveryService } from '../delivery/index.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { ModelRegistry } from '../registry/index.ts';
import type { DeviceStore } from '../store/devices.ts';
import type { SubmitResult } from '../training/index.ts';
import { candidatePlan, newTuningId, type CandidatePlan } from './candidates.ts';
import { decideProfile, fallbackDecision, type CandidateInput } from './decide.ts';
import type { CandidateRow, EvaluationRow, TuningRow, TuningStore } from './tuning-store.ts';
import { groupBy } from '../../shared/group.ts';

/** A caller's mistake (unknown profile or model, wrong state); routes answer 400/404/409. */
export class TuningError extends Error {
  constructor(
    readonly code: 'bad-request' | 'not-found' | 'conflict',
    message: string,
  ) {
    super(message);
  }
}

/** What the tuning room uses of the other rooms; wired in control-plane/compose.ts. */
export type TuningPorts = {
  registry: ModelRegistry;
  delivery: DeliveryService;
  training: {
    submit(req: TrainingJobCreate): SubmitResult;
    view(id: string): TrainingJobView | null;
    retry(id: string): SubmitResult | null;
    cancel(id: string): Promise<unknown>;
  } | null;
  startRollout(body: unknown): { id: string };
};

export type TuningServiceOptions = {
  store: TuningStore;
  devices: DeviceStore;
  profiles: readonly DeviceProfile[];
  ports: TuningPorts;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  /** Merged over the profile's benchmark settings for evaluations (short runs on test benches). */
  benchmark?: Record<string, number | boolean>;
  /** Merged over the profile's idle gate (test benches on a loaded machine). */
  idle?: Partial<EvaluationSettings>;
  /**
   * Evaluations in flight at once across the fleet (default: no limit beyond one per device). Simulated
   * canaries sharing one host set 1, so one device's benchmark does not slow another's measurement.
   */
  maxConcurrentEvaluations?: number;
};

/** Tuning views kept for the next poll (each up to about 2 MB at the largest tuning). */
const VIEWS_KEPT = 8;

const ms = (m: EvaluationRow): DeviceMeasurement | null =>
  m.result
    ? {
        deviceId: m.deviceId,
        p50: m.result.latencyMs.p50,
        p90: m.result.latencyMs.p90,
        accuracy: m.result.accuracy,
        agreement: m.result.agreement,
        peakRssBytes: m.result.peakRssBytes,
        integerKernelShare: m.result.integerKernelShare,
        sessionCreateMs: m.result.sessionCreateMs,
        at: m.updatedAt,
      }
    : null;

/**
 * Runs tuning jobs: candidates (trained by the training queue, or given) become registered `candidate`
 * versions; each profile's canaries evaluate every candidate one at a time over MQTT; the pure
 * decision (decide.ts) picks per profile; the choice rolls out on approval or at once. Everything is
 * in SQLite, so a restart resumes: evaluations that were in flight are asked for again.
 */
export class TuningService {
  private readonly busy = new Set<string>();
  /** The views built last, oldest first, with the store's change mark they were built at. */
  private readonly views = new Map<string, { mark: number; view: TuningView }>();
  private stopped = false;
  constructor(private readonly o: TuningServiceOptions) {}

  /** No more steps after the control plane stops (its database closes). */
  stop(): void {
    this.stopped = true;
  }

  /** Runs a tick from an event; a failure is logged, never unhandled. */
  private kick(): void {
    if (this.stopped) return;
    this.tick().catch((e: unknown) => {
      if (!this.stopped) this.o.log.error('tuning tick failed', { error: String(e) });
    });
  }

  private get store(): TuningStore {
    return this.o.store;
  }

  /** After a restart: re-ask what was in flight; candidates half registered are registered again. */
  resume(): void {
    const now = this.o.now();
    for (const t of this.store.active()) {
      if (t.state === 'evaluating') {
        const n = this.store.resendSent(t.id, now);
        if (n) this.store.addNote(t.id, `control plane restarted during evaluation: ${n} evaluation(s) in flight asked for again`, now);
      }
      if (t.state === 'registering') this.store.addNote(t.id, 'control plane restarted while registering candidates: registering again', now);
    }
  }

  create(req: TuningCreate): TuningView {
    const known = new Set(this.o.profiles.map((p) => p.id));
    for (const [i, p] of (req.profiles ?? []).entries()) if (!known.has(p)) throw new TuningError('bad-request', `bad body: profiles.${i}: unknown profile "${p}" (known: ${[...known].join(', ')})`);
    for (const [i, c] of (req.candidates ?? []).entries()) {
      if (!known.has(c.profileId)) throw new TuningError('bad-request', `bad body: candidates.${i}.profileId: unknown profile "${c.profileId}"`);
      if (!this.o.ports.registry.get(c.modelId, c.version)) throw new TuningError('bad-request', `bad body: candidates.${i}: model ${c.modelId} v${c.version} is not in the registry`);
    }
    const profiles = req.profiles ?? (req.candidates ? [...new Set(req.candidates.map((c) => c.profileId))] : this.o.profiles.filter((p) => this.o.devices.hasOnline(p.id)).map((p) => p.id));
    if (profiles.length === 0) throw new TuningError('bad-request', 'bad body: profiles: no profile has an online device; name the target profiles');
    if (req.candidates && req.profiles) {
      const missing = req.profiles.filter((p) => !req.candidates!.some((c) => c.profileId === p));
      if (missing.length) throw new TuningError('bad-request', `bad body: candidates: none given for profile(s) ${missing.join(', ')}`);
    }
    if (!req.candidates && !this.o.ports.training) throw new TuningError('bad-request', 'this control plane has no training room: give "candidates"');
    const now = this.o.now();
    const id = newTuningId(now);
    this.store.insert({ id, name: req.name, state: req.candidates ? 'registering' : 'training', request: req, profiles }, now);
    this.o.log.info('tuning created', { tuningId: id, profiles, source: req.candidates ? 'candidates' : 'training' });
    if (!req.candidates) {
      const r = this.o.ports.training!.submit(this.trainingRequest(id, req, profiles));
      if (!r.ok) {
        this.store.update(id, { state: 'failed', error: { code: 'bad-training-request', message: `${r.error.field}: ${r.error.message}` }, finishedAt: now }, now);
        throw new TuningError('bad-request', `bad body: ${r.error.field}: ${r.error.message}`);
      }
      this.store.update(id, { trainingJobId: r.value.id }, now);
    }
    this.kick();
    return this.view(id)!;
  }

  /** One training job for every target profile: each profile's candidate recipes, deduplicated by id. */
  private trainingRequest(id: string, req: TuningCreate, profiles: string[]): TrainingJobCreate {
    const recipes = new Map<string, NonNullable<CandidatePlan['recipe']>>();
    for (const pid of profiles) for (const c of candidatePlan(this.profile(pid), req.variants)) if (c.recipe) recipes.set(c.recipe.id, c.recipe);
    return {
      name: `${req.name}-${id.slice(-6)}`.slice(0, 63),
      teacher: req.teacher!,
      student: req.student!,
      dataset: req.dataset!,
      recipes: [...recipes.values()],
      hyperparameters: req.hyperparameters,
    };
  }

  private profile(id: string): DeviceProfile {
    const p = this.o.profiles.find((x) => x.id === id);
    if (!p) throw new TuningError('bad-request', `unknown profile "${id}"`);
    return p;
  }

  /** GET /tunings: a page of summaries (no candidate, evaluation result or note is read). */
  list(f: Parameters<TuningStore['summaries']>[0]): ReturnType<TuningStore['summaries']> {
    return this.store.summaries(f);
  }

  /**
   * One tuning's view (the tuning page polls it every 2 s; at 256 candidates x 50 canaries it reads and parses 12,800
   * evaluations). Built again only when the store wrote to the tuning since (`TuningStore.changeMark`); the few
   * viewed last are kept. Callers do not modify what it returns.
   */
  view(id: string): TuningView | null {
    const mark = this.store.changeMark(id);
    const hit = this.views.get(id);
    if (hit && hit.mark === mark) {
      this.views.delete(id);
      this.views.set(id, hit);
      return hit.view;
    }
    const t = this.store.get(id);
    if (!t) return null;
    const view = this.viewOf(t);
    this.views.delete(id);
    this.views.set(id, { mark, view });
    if (this.views.size > VIEWS_KEPT) this.views.delete(this.views.keys().next().value!);
    return view;
  }

  async approve(id: string): Promise<TuningView> {
    const t = this.mustGet(id);
    if (t.state !== 'awaiting-approval') throw new TuningError('conflict', `tuning ${id} is ${t.state}, not awaiting approval`);
    this.rollOut(t);
    return this.view(id)!;
  }

  async cancel(id: string): Promise<TuningView> {
    const t = this.mustGet(id);
    if (TERMINAL_TUNING_STATES.includes(t.state)) throw new TuningError('conflict', `tuning ${id} has already ended (${t.state})`);
    const now = this.o.now();
    if (t.state === 'training' && t.trainingJobId) await this.o.ports.training?.cancel(t.trainingJobId).catch(() => {});
    this.store.cancelOpen(id, now);
    this.store.update(id, { state: 'cancelled', finishedAt: now }, now);
    this.o.log.info('tuning cancelled', { tuningId: id, was: t.state });
    return this.view(id)!;
  }

  private mustGet(id: string): TuningRow {
    const t = this.store.get(id);
    if (!t) throw new TuningError('not-found', `tuning "${id}" not found`);
    return t;
  }

  // ---------------------------------------------------------------- progress

  /** Moves every active tuning on; called on a timer and after each report. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    for (const t of this.store.active()) {
      if (this.stopped) return;
      if (this.busy.has(t.id)) continue;
      this.busy.add(t.id);
      try {
        if (t.state === 'training') this.checkTraining(t);
        else if (t.state === 'registering') await this.registerCandidates(t);
        else if (t.state === 'evaluating') await this.evaluate(t);
      } catch (e) {
        if (this.stopped) return; // the database closed under a step in flight: the next start resumes it
        this.o.log.error('tuning step failed', { tuningId: t.id, state: t.state, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
        const now = this.o.now();
        this.store.update(t.id, { state: 'failed', error: { code: 'internal', message: String(e) }, finishedAt: now }, now);
      } finally {
        this.busy.delete(t.id);
      }
    }
  }

  private checkTraining(t: TuningRow): void {
    const training = this.o.ports.training;
    const now = this.o.now();
    const job = t.trainingJobId && training ? training.view(t.trainingJobId) : null;
    if (!job || !training) {
      this.store.update(t.id, { state: 'failed', error: { code: 'training-lost', message: `training job ${t.trainingJobId} is gone` }, finishedAt: now }, now);
      return;
    }
    if (job.state === 'succeeded') {
      const teacher = (job.metrics as { teacherFp32?: number } | null)?.teacherFp32 ?? null;
      this.store.update(t.id, { state: 'registering', teacherAccuracy: typeof teacher === 'number' ? teacher : null }, now);
      return;
    }
    if (job.state === 'interrupted' && !t.notes.some((n) => n.startsWith('training interrupted'))) {
      // a control-plane restart interrupts the trainer: train again once
      const r = training.retry(job.id);
      if (r?.ok) {
        this.store.update(t.id, { trainingJobId: r.value.id }, now);
        this.store.addNote(t.id, `training interrupted (${job.id}, control-plane restart?): resubmitted as ${r.value.id}`, now);
        return;
      }
    }
    if (job.state === 'failed' || job.state === 'cancelled' || job.state === 'interrupted') {
      this.store.update(t.id, { state: 'failed', error: { code: `training-${job.state}`, message: `training job ${job.id} ${job.state}: ${job.error?.message ?? ''}` }, finishedAt: now }, now);
    }
  }

  /** Each candidate becomes a signed, runtime-checked version with role `candidate` of its own. */
  private async registerCandidates(t: TuningRow): Promise<void> {
    const reg = this.o.ports.registry;
    const sources: { profileId: string; key: string; configured: boolean; source: ModelVersion }[] = [];
    if (t.request.candidates) {
      for (const c of t.request.candidates) {
        const m = reg.get(c.modelId, c.version)!;
        const key = c.label ?? (m.kind === 'fp32' ? 'fp32' : (m.recipeId ?? m.id));
        sources.push({ profileId: c.profileId, key, configured: m.recipeId === this.profile(c.profileId).recipe.id && m.kind === 'int8', source: m });
      }
    } else {
      const job = this.o.ports.training?.view(t.trainingJobId!);
      const models = (job?.models ?? []).map((r) => reg.get(r.id, r.version)).filter((m): m is ModelVersion => m !== null);
      for (const pid of t.profiles) {
        for (const plan of candidatePlan(this.profile(pid), t.request.variants)) {
          const m = plan.recipe ? models.find((x) => x.role === 'student-int8-qat' && x.recipeId === plan.recipe!.id) : models.find((x) => x.role === 'student-fp32');
          if (m) sources.push({ profileId: pid, key: plan.key, configured: plan.configured, source: m });
          else this.store.addNote(t.id, `${pid}: candidate ${plan.key} (${plan.why}) was not produced by training job ${t.trainingJobId}`, this.o.now());
        }
      }
    }
    const rows: Omit<CandidateRow, 'verdict'>[] = [];
    for (const s of sources) {
      const comp = (role: string): string | undefined => s.source.companions.find((c) => c.role === role)?.path;
      const evalset = comp('evalset');
      const refpred = comp('reference-predictions');
      const m = await reg.registerFile({
        name: t.request.name,
        file: s.source.filePath,
        kind: s.source.kind,
        role: 'candidate',
        id: `${t.request.name}-${s.profileId}-${s.key}`.slice(0, 128),
        profileId: s.profileId,
        ...(s.source.recipeId ? { recipeId: s.source.recipeId } : {}),
        ...(s.source.metrics.accuracy !== null ? { centralAccuracy: s.source.metrics.accuracy } : {}),
        companions: { ...(evalset ? { evalset } : {}), ...(refpred ? { referencePredictions: refpred } : {}) },
      });
      rows.push({
        tuningId: t.id,
        profileId: s.profileId,
        key: s.key,
        modelId: m.id,
        version: m.version,
        kind: m.kind,
        recipeId: s.source.recipeId,
        configured: s.configured,
        pytorchAccuracy: s.source.metrics.accuracy,
        runtimeAccuracy: m.metrics.runtime?.accuracy ?? null,
        runtimeAgreement: m.metrics.runtime?.agreement ?? null,
      });
    }
    const now = this.o.now();
    if (this.store.get(t.id)?.state !== 'registering') return; // cancelled meanwhile
    this.store.addCandidates(rows);
    // canaries: per profile, up to N online devices (sorted, so a restart picks the same ones)
    const canaries: Record<string, string[]> = {};
    for (const pid of t.profiles) canaries[pid] = this.o.devices.onlineOfProfile(pid, t.request.canaries);
    this.store.addEvaluations(
      rows.flatMap((c) => (canaries[c.profileId] ?? []).map((deviceId) => ({ tuningId: t.id, profileId: c.profileId, key: c.key, deviceId, modelId: c.modelId, version: c.version }))),
      now,
    );
    this.store.update(t.id, { state: 'evaluating', canaries }, now);
    this.o.log.info('tuning candidates registered', { tuningId: t.id, candidates: rows.length, canaries });
    await this.evaluate(this.store.get(t.id)!);
  }

  /** Sends each canary its next candidate (one at a time per device), times out silent ones, decides when nothing is open. */
  private async evaluate(t: TuningRow): Promise<void> {
    const now = this.o.now();
    const evals = this.store.evaluations(t.id);
    for (const [deviceId, list] of groupBy(evals, (e) => e.deviceId)) {
      const dev = this.o.devices.get(deviceId);
      const open = list.filter((e) => e.state === 'pending' || e.state === 'sent');
      if (open.length === 0) continue;
      if (!dev || dev.status !== 'online' || dev.revokedAt !== null) {
        for (const e of open) this.store.setEvaluation(e, ['pending', 'sent'], { state: 'missing', reason: e.state === 'sent' ? 'the canary went offline mid-evaluation' : 'the canary was offline' }, now);
        this.o.log.warn('tuning canary offline', { tuningId: t.id, deviceId, missing: open.length });
        continue;
      }
      const sent = open.find((e) => e.state === 'sent');
      if (sent) {
        if (sent.sentAt !== null && now - sent.sentAt > t.request.evaluationTimeoutSeconds * 1000) {
          this.store.setEvaluation(sent, ['sent'], { state: 'missing', reason: `no answer within ${t.request.evaluationTimeoutSeconds} s` }, now);
          return this.evaluate(this.store.get(t.id)!);
        }
        continue;
      }
      if (this.o.maxConcurrentEvaluations !== undefined && this.store.countSent() >= this.o.maxConcurrentEvaluations) continue;
      const next = open.find((e) => e.state === 'pending')!;
      await this.send(t, next, now);
    }
    if (this.store.evaluations(t.id).every((e) => e.state !== 'pending' && e.state !== 'sent')) this.decide(this.store.get(t.id)!);
  }

  private async send(t: TuningRow, e: EvaluationRow, now: number): Promise<void> {
    const profile = this.profile(e.profileId);
    if (!this.store.setEvaluation(e, ['pending'], { state: 'sent', sentAt: now }, now)) return;
    try {
      const source = await this.o.ports.registry.deliverySource(e.modelId, e.version, e.profileId);
      await this.o.ports.delivery.evaluate(e.deviceId, source, {
        tuningId: t.id,
        idle: { ...profile.evaluation, ...this.o.idle },
        ...(this.o.benchmark ? { benchmark: this.o.benchmark } : {}),
      });
      this.o.metrics.inc('edgefleet_tuning_evaluations_sent_total', 'Evaluate commands sent to canaries');
    } catch (err) {
      this.store.setEvaluation(e, ['sent'], { state: 'failed', reason: `not sent: ${(err as Error).message}` }, this.o.now());
      this.o.log.warn('evaluate not sent', { tuningId: t.id, deviceId: e.deviceId, modelId: e.modelId, error: String(err) });
    }
  }

  /**
   * The `onBirth` hook: a device that (re)connected may have missed an evaluate sent while it was away
   * (a broker or control-plane restart, an agent restart that dropped its queue): ask it again. An
   * agent still running that evaluation ignores the repeat.
   */
  onBirth(deviceId: string): void {
    const n = this.store.resendAllSentTo(deviceId, this.o.now());
    if (n) {
      this.o.log.info('evaluations asked for again after a birth', { deviceId, evaluations: n });
      this.kick();
    }
  }

  /** The `onReport` hook: a canary's evaluation progress or outcome. Reports nobody asked for are counted and dropped. */
  onReport(deviceId: string, r: EvaluationReport): void {
    const e = this.store.evaluation(r.tuningId, deviceId, r.model.modelId, r.model.version);
    if (!e || (e.state !== 'sent' && e.state !== 'pending')) {
      this.o.metrics.inc('edgefleet_tuning_reports_ignored_total', 'Evaluation reports for no open evaluation (late, duplicate or unsolicited)');
      this.o.log.debug('evaluation report ignored', { deviceId, tuningId: r.tuningId, modelId: r.model.modelId, version: r.model.version, state: r.state, known: e?.state ?? null });
      return;
    }
    const now = this.o.now();
    if (r.state === 'done') {
      if (!r.result) {
        this.store.setEvaluation(e, ['sent', 'pending'], { state: 'failed', reason: 'the device reported done without a result' }, now);
      } else {
        this.store.setEvaluation(e, ['sent', 'pending'], { state: 'done', result: r.result }, now);
        this.o.log.info('candidate measured', { tuningId: r.tuningId, deviceId, modelId: r.model.modelId, version: r.model.version, p50Ms: r.result.latencyMs.p50, accuracy: r.result.accuracy });
      }
    } else if (r.state === 'failed') {
      this.store.setEvaluation(e, ['sent', 'pending'], { state: 'failed', reason: r.reason ?? 'failed without a reason' }, now);
      this.o.log.warn('candidate evaluation failed', { tuningId: r.tuningId, deviceId, modelId: r.model.modelId, reason: r.reason });
    } else return;
    this.kick();
  }

  // ---------------------------------------------------------------- decision

  private decide(t: TuningRow): void {
    const now = this.o.now();
    const cands = this.store.candidates(t.id);
    const evals = this.store.evaluations(t.id);
    const decisions: ProfileDecision[] = [];
    for (const pid of t.profiles) {
      const mine = cands.filter((c) => c.profileId === pid);
      const inputs: CandidateInput[] = mine.map((c) => {
        const es = evals.filter((e) => e.profileId === pid && e.key === c.key);
        return {
          key: c.key,
          kind: c.kind,
          configured: c.configured,
          measurements: es.filter((e) => e.state === 'done').map(ms).filter((m): m is DeviceMeasurement => m !== null),
          failures: es.filter((e) => e.state === 'failed').map((e) => ({ deviceId: e.deviceId, reason: e.reason ?? '' })),
          missing: es.filter((e) => e.state === 'missing').map((e) => ({ deviceId: e.deviceId, reason: e.reason ?? '' })),
          centralAccuracy: c.pytorchAccuracy,
        };
      });
      const canaries = t.canaries[pid] ?? [];
      const d =
        canaries.length === 0
          ? { ...fallbackDecision(inputs, 'no device of this profile was online'), verdicts: Object.fromEntries(inputs.map((i) => [i.key, { aggregate: null, status: 'not-measured' as const, reasons: ['no canary online'] }])), missing: [`${pid}: no online device to measure on`] }
          : decideProfile({ candidates: inputs, constraints: t.request.constraints, objective: t.request.objective, teacherAccuracy: t.teacherAccuracy });
      for (const [key, v] of Object.entries(d.verdicts)) this.store.setVerdict(t.id, pid, key, v);
      const chosen = d.chosen ? mine.find((c) => c.key === d.chosen)! : null;
      decisions.push({ profileId: pid, measured: d.measured, canaries, chosen: chosen ? { modelId: chosen.modelId, version: chosen.version, key: chosen.key } : null, front: d.front, reason: d.reason, missing: d.missing });
    }
    this.store.update(t.id, { decisions, state: 'awaiting-approval' }, now);
    this.o.log.info('tuning decided', { tuningId: t.id, decisions: decisions.map((d) => ({ profile: d.profileId, chosen: d.chosen?.key ?? null, measured: d.measured })) });
    if (t.request.autoRollout) this.rollOut(this.store.get(t.id)!);
  }

  /** The measured choices roll out through the rollouts room (waves and gates as usual); unmeasured fallbacks do not. */
  private rollOut(t: TuningRow): void {
    const now = this.o.now();
    const models = t.decisions.filter((d) => d.chosen && d.measured).map((d) => ({ modelId: d.chosen!.modelId, version: d.chosen!.version, profileId: d.profileId }));
    const skipped = t.decisions.filter((d) => d.chosen && !d.measured).map((d) => d.profileId);
    if (skipped.length) this.store.addNote(t.id, `not rolled out (not measured): ${skipped.join(', ')}`, now);
    if (models.length === 0) {
      this.store.addNote(t.id, 'nothing measured was chosen: no rollout', now);
      this.store.update(t.id, { state: 'done', finishedAt: now }, now);
      return;
    }
    const body = RolloutCreateSchema.parse({ name: `tuning ${t.id}`, models, ...(t.request.rollout.waves ? { waves: t.request.rollout.waves } : {}), ...(t.request.rollout.gates ? { gates: t.request.rollout.gates } : {}) });
    const r = this.o.ports.startRollout(body);
    this.store.update(t.id, { state: 'done', rolloutId: r.id, finishedAt: now }, now);
    this.o.log.info('tuning rollout started', { tuningId: t.id, rolloutId: r.id, models: models.map((m) => `${m.profileId}:${m.modelId}@${m.version}`) });
  }

  // ---------------------------------------------------------------- views

  private viewOf(t: TuningRow): TuningView {
    const cands = this.store.candidates(t.id);
    const evals = this.store.evaluations(t.id);
    const counts = { pending: 0, sent: 0, done: 0, failed: 0, missing: 0, cancelled: 0 };
    for (const e of evals) counts[e.state]++;
    // each candidate's evaluations, grouped once (up to 256 candidates x 50 canaries: a filter per candidate was
    // quadratic on the tuning page's 2 s poll)
    const byCandidate = groupBy(evals, (e) => `${e.profileId}\0${e.key}`);
    return {
      id: t.id,
      name: t.name,
      state: t.state,
      objective: t.request.objective,
      constraints: t.request.constraints,
      autoRollout: t.request.autoRollout,
      profiles: t.profiles,
      trainingJobId: t.trainingJobId,
      candidates: cands.map((c) => {
        const es = byCandidate.get(`${c.profileId}\0${c.key}`) ?? [];
        return {
          profileId: c.profileId,
          key: c.key,
          modelId: c.modelId,
          version: c.version,
          kind: c.kind,
          recipeId: c.recipeId,
          pytorchAccuracy: c.pytorchAccuracy,
          runtimeAccuracy: c.runtimeAccuracy,
          runtimeAgreement: c.runtimeAgreement,
          measurements: es.filter((e) => e.state === 'done').map(ms).filter((m): m is DeviceMeasurement => m !== null),
          failures: es.filter((e) => e.state === 'failed').map((e) => ({ deviceId: e.deviceId, reason: e.reason ?? '' })),
          missing: es.filter((e) => e.state === 'missing' || e.state === 'cancelled').map((e) => ({ deviceId: e.deviceId, reason: e.reason ?? '' })),
          aggregate: c.verdict?.aggregate ?? null,
          status: c.verdict?.status ?? null,
          reasons: c.verdict?.reasons ?? [],
        };
      }),
      decisions: t.decisions,
      evaluations: counts,
      rolloutId: t.rolloutId,
      notes: t.notes,
      error: t.error,
      createdAt: t.createdAt,
      updatedAt: t.updatedAt,
      finishedAt: t.finishedAt,
    };
  }
}
