import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeviceProfile } from '../../shared/profile.ts';
import { TERMINAL_JOB_STATES, type JobError, type JobLogEntry, type JobProgress, type ModelVersion, type TrainingJobCreate, type TrainingJobView } from '../../shared/registry.ts';
import type { ProgressLine, TrainerLine } from '../../shared/training.ts';
import type { Logger } from '../log.ts';
import type { JobArtifacts } from '../registry/model-registry.ts';
import { runTrainer, type RunTrainerOptions, type RunTrainerResult } from './run-trainer.ts';
import { buildTrainerSpec, newJobId } from './jobs-spec.ts';
import { jobView, type Finish, type TrainingJobRow, type TrainingJobStore } from './jobs-store.ts';
import type { FieldError, Result } from '../../shared/result.ts';

export const LOG_TAIL_LINES = 50;
/** Epoch-end points kept per job (every phase and recipe together). */
export const EPOCH_HISTORY_MAX = 1000;

/** The registry as the training room sees it: a sink for a succeeded job's artifacts. */
export type ModelSink = { registerJob(job: JobArtifacts): Promise<ModelVersion[]> };

export type TrainingQueueOptions = {
  store: TrainingJobStore;
  /** Job outputs go to `<dataDir>/artifacts/jobs/<jobId>`. */
  dataDir: string;
  /** Jobs running at once (default 1: one trainer uses every core). */
  concurrency?: number;
  python?: string;
  trainerScript?: string;
  /** SIGTERM → SIGKILL grace on cancel and shutdown. */
  killGraceMs?: number;
  /** Progress and log tail are written to SQLite at most this often while a job runs. */
  progressPersistMs?: number;
  registry?: ModelSink | null;
  profiles: () => readonly DeviceProfile[];
  log: Logger;
  now: () => number;
  /** The trainer adapter; tests may pass a fake. */
  run?: (opts: RunTrainerOptions) => Promise<RunTrainerResult>;
  /** A trainer phase (teacher, distill, qat, ...) ended after this many seconds (the training-phase histogram). */
  onPhaseEnd?: (phase: string, seconds: number) => void;
};

export type SubmitResult = Result<TrainingJobView, FieldError>;

/** Live state of a running job, kept in memory and written through to SQLite (throttled). */
class LiveJob {
  progress: JobProgress | null = null;
  logTail: JobLogEntry[] = [];
  lastPersist = 0;
  timer: NodeJS.Timeout | undefined;
  pendingReason: 'cancel' | 'shutdown' | null = null;
  readonly abort = new AbortController();
  done: Promise<void> = Promise.resolve();
  /** When the current phase's first progress line arrived. */
  phaseStartedAt: number | null = null;
  constructor(readonly row: TrainingJobRow) {}

  tail(level: JobLogEntry['level'], message: string, ts: number): void {
    this.logTail.push({ ts, level, message: message.length > 2000 ? `${message.slice(0, 2000)}…` : message });
    if (this.logTail.length > LOG_TAIL_LINES) this.logTail.splice(0, this.logTail.length - LOG_TAIL_LINES);
  }

  /** Folds one progress line in; true when a new phase started (worth persisting at once). */
  onProgress(l: ProgressLine, now: number): boolean {
    const key = (p: { phase: string; recipeId: string | null }): string => (p.recipeId ? `${p.phase}:${p.recipeId}` : p.phase);
    const prev = this.progress;
    const recipeId = l.recipeId ?? null;
    const samePhase = prev !== null && key(prev) === key({ phase: l.phase, recipeId });
    const phasesDone = prev === null ? [] : samePhase ? prev.phasesDone : [...prev.phasesDone, key(prev)];
    // an epoch-end line (the only ones with accuracy) becomes a point of the loss/accuracy charts; bounded
    const epochHistory = prev?.epochHistory ?? [];
    if (l.accuracy !== null) {
      epochHistory.push({ phase: l.phase, recipeId, epoch: l.epoch, loss: l.loss, accuracy: l.accuracy, at: now });
      if (epochHistory.length > EPOCH_HISTORY_MAX) epochHistory.splice(0, epochHistory.length - EPOCH_HISTORY_MAX);
    }
    this.progress = {
      phase: l.phase,
      recipeId,
      epoch: l.epoch,
      epochs: l.epochs,
      step: l.step,
      totalSteps: l.totalSteps,
      loss: l.loss,
      accuracy: l.accuracy ?? (samePhase ? prev.accuracy : null),
      lr: l.lr,
      etaSeconds: l.etaSeconds,
      jobEtaSeconds: l.jobEtaSeconds ?? null,
      jobProgress: l.jobProgress ?? null,
      phasesDone,
      epochHistory,
      updatedAt: now,
    };
    return !samePhase;
  }
}

/**
 * The persistent training queue: jobs wait in SQLite, at most `concurrency` trainers run at once,
 * every outcome ends in a terminal state. A control plane that stops (or crashed) leaves no job
 * `running`: it is `interrupted`, and queued jobs run after the restart.
 */
export class TrainingQueue {
  private readonly running = new Map<string, LiveJob>();
  /** Nothing runs before start() and after stop(). */
  private stopping = true;
  private readonly concurrency: number;
  private readonly persistMs: number;
  private readonly run: (opts: RunTrainerOptions) => Promise<RunTrainerResult>;

  constructor(private readonly o: TrainingQueueOptions) {
    this.concurrency = Math.max(1, o.concurrency ?? 1);
    this.persistMs = o.progressPersistMs ?? 1000;
    this.run = o.run ?? runTrainer;
  }

  /** Marks what the previous process left running as interrupted, then starts the queue. */
  start(): void {
    this.stopping = false;
    const left = this.o.store.interruptRunning(this.o.now(), {
      code: 'interrupted',
      message: 'the control plane stopped while this job was running; resubmit it (POST /training-jobs/<id>/retry)',
    });
    for (const j of left) this.o.log.warn('training job interrupted by a control-plane restart', { jobId: j.id, trainerPid: j.pid });
    const queued = this.o.store.countQueued();
    if (queued > 0) this.o.log.info('training queue resumes', { queued });
    setImmediate(() => this.pump());
  }

  /** Stops every running trainer (SIGTERM, then SIGKILL after the grace) and marks its job interrupted. */
  async stop(): Promise<void> {
    this.stopping = true;
    const all = [...this.running.values()];
    for (const j of all) {
      j.pendingReason = 'shutdown';
      j.abort.abort();
    }
    await Promise.all(all.map((j) => j.done));
  }

  submit(req: TrainingJobCreate): SubmitResult {
    const now = this.o.now();
    const id = newJobId(now);
    const outputDir = join(this.o.dataDir, 'artifacts', 'jobs', id);
    const built = buildTrainerSpec(req, this.o.profiles(), id, outputDir);
    if (!built.ok) return built;
    const { spec, profileMap } = built.value;
    this.o.store.insert({ id, name: req.name, request: req, spec, profileMap }, now);
    this.o.log.info('training job queued', { jobId: id, name: req.name, recipes: spec.recipes.map((r) => r.id) });
    setImmediate(() => this.pump());
    return { ok: true, value: this.view(id)! };
  }

  /** A new job with the same request as a finished one (interrupted, failed, cancelled or succeeded). */
  retry(id: string): SubmitResult | null {
    const row = this.o.store.get(id);
    if (!row) return null;
    if (!TERMINAL_JOB_STATES.includes(row.state)) return { ok: false, error: { field: 'state', message: `job "${id}" is ${row.state}; only an ended job can be retried` } };
    return this.submit(row.request);
  }

  view(id: string): TrainingJobView | null {
    const row = this.o.store.get(id);
    if (!row) return null;
    const v = jobView(row);
    const live = this.running.get(id);
    // a running job's freshest progress is in memory; SQLite trails by at most progressPersistMs
    return live && row.state === 'running' ? { ...v, progress: live.progress, logTail: live.logTail } : v;
  }

  list(filter: Parameters<TrainingJobStore['list']>[0]): { items: TrainingJobView[]; total: number } {
    const { items, total } = this.o.store.list(filter);
    return { items: items.map((r) => this.view(r.id) ?? jobView(r)), total };
  }

  /**
   * Cancels a queued job at once, or a running one by stopping its trainer; resolves when the job
   * has ended. null: no such job; 'ended': it had already ended.
   */
  async cancel(id: string): Promise<TrainingJobView | null | 'ended'> {
    const row = this.o.store.get(id);
    if (!row) return null;
    if (row.state === 'queued') {
      if (this.o.store.finish(id, { state: 'cancelled', error: { code: 'cancelled', message: 'cancelled by the operator before it started' } }, this.o.now())) {
        this.o.log.info('training job cancelled', { jobId: id, was: 'queued' });
        return this.view(id);
      }
    }
    const live = this.running.get(id);
    if (live) {
      live.pendingReason ??= 'cancel';
      live.abort.abort();
      await live.done;
      return this.view(id);
    }
    return 'ended';
  }

  private pump(): void {
    while (!this.stopping && this.running.size < this.concurrency) {
      const row = this.o.store.claimNext(this.o.now());
      if (!row) return;
      const live = new LiveJob(row);
      this.running.set(row.id, live);
      live.done = this.execute(live)
        .catch((e: unknown) => {
          // a bug here must not leave the job running forever
          this.o.log.error('training job runner failed', { jobId: row.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
          this.o.store.finish(row.id, { state: 'failed', error: { code: 'internal', message: `control plane error: ${String(e)}` } }, this.o.now(), live.logTail, live.progress);
        })
        .finally(() => {
          if (live.timer) clearTimeout(live.timer);
          this.running.delete(row.id);
          setImmediate(() => this.pump());
        });
    }
  }

  private persist(live: LiveJob): void {
    if (live.timer) clearTimeout(live.timer);
    live.timer = undefined;
    live.lastPersist = this.o.now();
    this.o.store.saveLive(live.row.id, live.progress, live.logTail, live.lastPersist);
  }

  private schedulePersist(live: LiveJob, urgent: boolean): void {
    const since = this.o.now() - live.lastPersist;
    if (urgent || since >= this.persistMs) return this.persist(live);
    live.timer ??= setTimeout(() => this.persist(live), this.persistMs - since);
  }

  private onLine(live: LiveJob, l: TrainerLine): void {
    const now = this.o.now();
    const jobId = live.row.id;
    switch (l.type) {
      case 'progress': {
        const before = live.progress;
        const newPhase = live.onProgress(l, now);
        if (newPhase) {
          if (before && live.phaseStartedAt !== null) this.o.onPhaseEnd?.(before.phase, (now - live.phaseStartedAt) / 1000);
          live.phaseStartedAt = now;
        }
        this.schedulePersist(live, newPhase);
        return;
      }
      case 'log': {
        const fields = l.fields && Object.keys(l.fields).length ? ` ${JSON.stringify(l.fields)}` : '';
        live.tail(l.level, l.message + fields, now);
        this.o.log[l.level === 'error' ? 'warn' : 'debug']('trainer', { jobId, level: l.level, message: l.message });
        break;
      }
      case 'artifact':
        live.tail('info', `artifact ${l.kind}${l.recipeId ? ` (${l.recipeId})` : ''}: ${l.file}, ${l.sizeBytes} bytes${l.accuracy !== undefined ? `, eval-set accuracy ${l.accuracy}` : ''}`, now);
        break;
      case 'error':
        live.tail('error', `${l.code}: ${l.message}`, now);
        break;
      case 'result':
        live.tail('info', `result: teacher ${l.metrics.teacherFp32}, student fp32 ${l.metrics.studentFp32}`, now);
        break;
    }
    this.schedulePersist(live, false);
  }

  private async execute(live: LiveJob): Promise<void> {
    const { row } = live;
    const jobId = row.id;
    const log = this.o.log.child({ jobId });
    await mkdir(row.spec.outputDir, { recursive: true });
    log.info('training job started', { outputDir: row.spec.outputDir });
    let stderrRest = '';
    const res = await this.run({
      spec: row.spec,
      ...(this.o.python !== undefined ? { python: this.o.python } : {}),
      ...(this.o.trainerScript !== undefined ? { trainerScript: this.o.trainerScript } : {}),
      killGraceMs: this.o.killGraceMs ?? 5000,
      signal: live.abort.signal,
      onSpawn: (pid) => {
        this.o.store.setPid(jobId, pid, this.o.now());
        log.info('trainer started', { trainerPid: pid });
      },
      onLine: (l) => this.onLine(live, l),
      onInvalidLine: (i) => {
        live.tail('warn', `unparsed trainer line (${i.error.split('\n')[0]}): ${i.line.slice(0, 500)}`, this.o.now());
        log.warn('trainer line does not match the schema', { error: i.error, line: i.line.slice(0, 500) });
      },
      onStderr: (text) => {
        const parts = (stderrRest + text).split('\n');
        stderrRest = parts.pop() ?? '';
        for (const p of parts) if (p.trim()) live.tail('stderr', p, this.o.now());
      },
    });
    if (stderrRest.trim()) live.tail('stderr', stderrRest, this.o.now());
    if (live.timer) clearTimeout(live.timer);

    const end = (f: Finish): void => {
      // the last phase ends with the trainer; a phase cut short by a failure or cancel is not a duration
      if (f.state === 'succeeded' && live.progress && live.phaseStartedAt !== null) this.o.onPhaseEnd?.(live.progress.phase, (this.o.now() - live.phaseStartedAt) / 1000);
      this.o.store.finish(jobId, f, this.o.now(), live.logTail, live.progress);
      const fields = { state: f.state, ...(f.error ? { error: f.error } : {}), ...(f.models ? { models: f.models.map((m) => `${m.id}@${m.version}`) } : {}) };
      if (f.state === 'succeeded' || f.state === 'cancelled') log.info('training job ended', fields);
      else log.warn('training job ended', fields);
    };

    if (!res.ok && live.pendingReason === 'shutdown') {
      return end({ state: 'interrupted', error: { code: 'interrupted', message: 'the control plane stopped while this job was running; resubmit it (POST /training-jobs/<id>/retry)' } });
    }
    if (!res.ok && (res.cancelled || live.pendingReason === 'cancel')) {
      return end({ state: 'cancelled', error: { code: 'cancelled', message: 'cancelled by the operator while it ran' } });
    }
    if (!res.ok || !res.result) {
      const error: JobError = res.error ?? { code: 'internal', message: 'trainer failed without saying why' };
      return end({ state: 'failed', error });
    }
    const result = res.result;
    let models: ModelVersion[] = [];
    if (this.o.registry) {
      try {
        models = await this.o.registry.registerJob({ jobId, name: row.name, outputDir: row.spec.outputDir, spec: row.spec, result, artifacts: res.artifacts, profileMap: row.profileMap });
      } catch (e) {
        live.tail('error', `registering the models failed: ${(e as Error).message}`, this.o.now());
        return end({ state: 'failed', metrics: result.metrics, result, error: { code: 'registration-failed', message: `the trainer succeeded but registering its models failed: ${(e as Error).message}` } });
      }
    }
    end({ state: 'succeeded', metrics: result.metrics, result, models: models.map((m) => ({ id: m.id, version: m.version, role: m.role })) });
  }
}
