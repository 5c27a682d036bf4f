import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { rm, statfs } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { parseEvalSet } from '../../shared/evalset.ts';
import { ModelManifestSchema, type BenchmarkResult, type EvaluationReport, type InstallState, type ModelManifest, type ModelRef } from '../../shared/messages.ts';
import type { EvaluationSettings as EvaluationCommandIdle } from '../../shared/profile.ts';
import { verifyManifest } from '../../shared/signing.ts';
import { decodeFrame, MAX_WINDOW } from '../../shared/transfer.ts';
import { runBenchmark } from '../benchmark/runner.ts';
import type { BenchmarkCommand, CommandContext, CommandHandlers, DeployCommand, EvaluateCommand, RollbackCommand } from '../commands.ts';
import { errorMessage } from '../log.ts';
import { Download, DownloadTimeoutError, type DownloadStats, type TransferSpec } from './download.ts';
import { ModelStore, type CompanionRole, type InstalledModel } from './model-store.ts';
import { pathInside } from './store-paths.ts';
import type { Result } from '../../shared/result.ts';

export type DeliveryAgentOptions = {
  /** Chunks asked for per request (default 16, at most 64). */
  window?: number;
  /** Chunks asked for per request while listening on a transfer's shared topic (default 32, at most 64); see Download. */
  fanoutWindow?: number;
  /** Ask again for outstanding chunks after this long without one (default 5000; doubles while silent, up to 8x). */
  requestTimeoutMs?: number;
  /** Installed versions kept per model for rollback (default 3; the active and previous ones are always kept). */
  keepVersions?: number;
  /** A download with no chunk for this long fails with the reason (default 120 s); see Download. */
  stallTimeoutMs?: number;
  /** Free space left over after a download (default 16 MiB). */
  minFreeBytes?: number;
  /** Passed to runBenchmark: null forces onnxruntime CPU; default finds trtexec. */
  trtexecPath?: string | null;
  /**
   * Run the benchmark after an install (default true). The delivery bench and the fan-out test turn it off: their
   * simulated agents share one process and two cores, so the benchmark child of an agent done early would slow the
   * others still downloading, which a real device's benchmark never does to another device. Off, the install ends
   * `failed` with that reason once the model is in the store.
   */
  runBenchmarks?: boolean;
  /** Listen on a transfer's shared topic when the broker grants it (default true); false: always the device's own topic. */
  fanout?: boolean;
  /** Test seam for the free-space check. */
  freeBytes?: (dir: string) => Promise<number>;
  /** 1-minute load average per core, for the evaluation idle gate (test seam; default os.loadavg). */
  loadPerCore?: () => number;
  /** How often a waiting evaluation looks at the load again (default 5000). */
  idlePollMs?: number;
  /**
   * `downloading` progress goes out at each tenth of the download, but not more often than this (default 1000 ms): a
   * fast download reported ten progress steps per device, each a message and a SQLite transaction on the control
   * plane (260 of them for one 20 MiB model to 20 devices), for a progress bar that moves in under a second anyway.
   */
  progressIntervalMs?: number;
  now?: () => number;
};

type Job = { manifest: ModelManifest; rolloutId: string | null };
type BenchOutcome = Result<{ result: BenchmarkResult; baseline: BenchmarkResult | null }>;
const JobFileSchema = z.object({ manifest: ModelManifestSchema, rolloutId: z.string().max(64).nullable() });

const MiB = 1024 * 1024;
const refText = (r: ModelRef): string => `${r.modelId} v${r.version}`;
const sameRef = (a: ModelRef | null, b: ModelRef | null): boolean => !!a && !!b && a.modelId === b.modelId && a.version === b.version;

/** Why a manifest must not be acted on, or null. The signature comes first: nothing of an unsigned manifest is trusted, not even its expiry. */
export function manifestProblem(m: ModelManifest, publicKeyPem: string, now: number): string | null {
  if (!verifyManifest(m, publicKeyPem)) return 'manifest signature does not verify against the control-plane key pinned at enrollment; refusing to download';
  if (m.expiresAt <= now) return `manifest expired at ${new Date(m.expiresAt).toISOString()}`;
  return null;
}

async function defaultFreeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/**
 * The agent's delivery room: transfer client, model store, deploy → download → verify → install → benchmark → activate,
 * rollback and re-benchmark. Jobs run one at a time off the MQTT callback and are kept on disk until done, so an agent
 * restart resumes them (`resume`).
 */
export class DeliveryAgent {
  readonly store: ModelStore;
  /** Per transfer id, the counters of the latest download (tests read them). */
  readonly downloadStats = new Map<string, DownloadStats>();
  private readonly downloads = new Map<string, Download>();
  private readonly jobsDir: string;
  private readonly transfersDir: string;
  private readonly queued = new Set<string>();
  /** Evaluations queued or running, by tuning and model. */
  private readonly evaluations = new Set<string>();
  private readonly evaluationsDir: string;
  private chain: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();
  /** The job running now, with its own abort (a stalled download is given up when a new deploy arrives). */
  private current: { ref: ModelRef; controller: AbortController; download: Download | null } | null = null;
  private readonly o: Required<Omit<DeliveryAgentOptions, 'trtexecPath'>> & { trtexecPath: string | null | undefined };
  /** Frames that did not decode or belong to no running download. */
  badFrames = 0;
  strayFrames = 0;

  constructor(
    private readonly stateDir: string,
    opts: DeliveryAgentOptions = {},
  ) {
    this.o = {
      window: Math.max(1, Math.min(MAX_WINDOW, opts.window ?? 16)),
      fanoutWindow: Math.max(1, Math.min(MAX_WINDOW, opts.fanoutWindow ?? 32)),
      requestTimeoutMs: opts.requestTimeoutMs ?? 5000,
      stallTimeoutMs: opts.stallTimeoutMs ?? 120_000,
      keepVersions: opts.keepVersions ?? 3,
      minFreeBytes: opts.minFreeBytes ?? 16 * MiB,
      trtexecPath: opts.trtexecPath,
      fanout: opts.fanout ?? true,
      runBenchmarks: opts.runBenchmarks ?? true,
      freeBytes: opts.freeBytes ?? defaultFreeBytes,
      loadPerCore: opts.loadPerCore ?? (() => loadavg()[0]! / Math.max(1, cpus().length)),
      idlePollMs: opts.idlePollMs ?? 5000,
      progressIntervalMs: opts.progressIntervalMs ?? 1000,
      now: opts.now ?? Date.now,
    };
    this.store = new ModelStore(stateDir, this.o.keepVersions);
    this.jobsDir = join(stateDir, 'delivery', 'jobs');
    this.transfersDir = join(stateDir, 'delivery', 'transfers');
    this.evaluationsDir = join(stateDir, 'delivery', 'evaluations');
    // a candidate never outlives the agent process that evaluated it: the control plane asks again or counts it missing
    rmSync(this.evaluationsDir, { recursive: true, force: true });
    mkdirSync(this.jobsDir, { recursive: true });
    mkdirSync(this.transfersDir, { recursive: true });
  }

  get handlers(): Required<CommandHandlers> {
    return {
      deploy: (cmd, ctx) => this.deploy(cmd, ctx),
      rollback: (cmd, ctx) => this.rollback(cmd, ctx),
      benchmark: (cmd, ctx) => this.benchmarkCommand(cmd, ctx),
      evaluate: (cmd, ctx) => this.evaluate(cmd, ctx),
      transferData: (payload, ctx) => this.transferData(payload, ctx),
    };
  }

  /** Tuning evaluations queued or running on this device. */
  get evaluationsOpen(): number {
    return this.evaluations.size;
  }

  /** Picks up jobs a previous run of the agent left unfinished. Call once the session is connected. */
  resume(ctx: CommandContext): void {
    const wanted = new Set<string>();
    for (const name of readdirSync(this.jobsDir).filter((n) => n.endsWith('.json'))) {
      let job: Job;
      try {
        job = JobFileSchema.parse(JSON.parse(readFileSync(join(this.jobsDir, name), 'utf8')));
      } catch (e) {
        ctx.logger.warn('unreadable pending delivery job dropped', { file: name, error: errorMessage(e) });
        rmSync(join(this.jobsDir, name), { force: true });
        continue;
      }
      const problem = manifestProblem(job.manifest, ctx.signingPublicKey, this.o.now());
      const ref = { modelId: job.manifest.modelId, version: job.manifest.version };
      if (problem) {
        rmSync(join(this.jobsDir, name), { force: true });
        void this.say(ctx, job, ref, 'failed', { reason: problem });
        continue;
      }
      ctx.logger.info('resuming delivery', { transferId: job.manifest.transferId, rolloutId: job.rolloutId, modelId: ref.modelId, version: ref.version });
      for (const id of [job.manifest.transferId, ...job.manifest.companions.map((c) => c.transferId)]) wanted.add(id);
      this.enqueue(job, ctx);
    }
    // partial downloads no pending job will finish (a crash, an ENOSPC before this fix) only hold disk
    for (const name of readdirSync(this.transfersDir)) {
      if (wanted.has(name)) continue;
      rmSync(join(this.transfersDir, name), { recursive: true, force: true });
      ctx.logger.info('orphaned partial download removed', { transferId: name });
    }
  }

  /**
   * The session is connected again: chunks answered to the old connection are lost (clean session), so every running
   * download asks again for what it has outstanding, now, instead of after its request timeout.
   */
  reconnected(): void {
    for (const d of this.downloads.values()) d.reaskOutstanding();
  }

  /** Stops every running job (they stay on disk for `resume`). */
  async close(): Promise<void> {
    this.abort.abort(new Error('delivery agent stopped'));
    await this.chain.catch(() => {});
  }

  async deploy(cmd: DeployCommand, ctx: CommandContext): Promise<void> {
    const m = cmd.manifest;
    const job: Job = { manifest: m, rolloutId: cmd.rolloutId };
    const ref = { modelId: m.modelId, version: m.version };
    const problem = manifestProblem(m, ctx.signingPublicKey, this.o.now());
    if (problem) {
      ctx.logger.warn('deploy refused', { transferId: m.transferId, rolloutId: cmd.rolloutId, modelId: m.modelId, version: m.version, reason: problem });
      await this.say(ctx, job, ref, 'failed', { reason: problem });
      return;
    }
    if (this.queued.has(this.jobKey(ref))) {
      ctx.logger.info('deploy already in progress', { transferId: m.transferId, modelId: m.modelId, version: m.version });
      return;
    }
    this.supersedeStalled(ref, ctx);
    const tmp = join(this.jobsDir, `.${this.jobKey(ref)}.tmp`);
    writeFileSync(tmp, JSON.stringify(job));
    renameSync(tmp, this.jobFile(ref));
    await this.say(ctx, job, ref, 'queued');
    this.enqueue(job, ctx);
  }

  /**
   * A new deploy never waits behind a download that is not moving (issue 8 item 9): the running job is given up, as
   * `failed` with the reason, when its download has had no chunk for one request timeout or more. A download that
   * is making progress is left to finish; it is bounded by its own stall timeout and the manifest's expiry.
   */
  private supersedeStalled(next: ModelRef, ctx: CommandContext): void {
    const cur = this.current;
    if (!cur?.download || cur.controller.signal.aborted) return;
    const quietMs = this.o.now() - cur.download.lastProgressAt;
    if (quietMs < this.o.requestTimeoutMs) return;
    ctx.logger.warn('stalled download given up for a new deploy', { modelId: cur.ref.modelId, version: cur.ref.version, next, quietMs });
    cur.controller.abort(new DownloadTimeoutError(`download of ${refText(cur.ref)} stalled (no chunk for ${Math.round(quietMs / 1000)} s); given up for the deploy of ${refText(next)}`));
  }

  transferData(payload: Buffer, ctx: CommandContext): void {
    const f = decodeFrame(payload);
    if (!f.ok) {
      this.badFrames++;
      ctx.logger.warn('bad transfer frame dropped', { error: f.error, badFrames: this.badFrames });
      return;
    }
    const d = this.downloads.get(f.value.transferId);
    if (!d) {
      this.strayFrames++;
      return;
    }
    d.accept(f.value);
  }

  async rollback(cmd: RollbackCommand, ctx: CommandContext): Promise<void> {
    const current = ctx.activeModel() ?? this.store.active();
    const target = cmd.to ?? this.store.previous();
    const job = { rolloutId: cmd.rolloutId };
    if (!target) {
      if (current) await this.say(ctx, job, current, 'failed', { reason: 'rollback: no previous version in the model store' });
      else ctx.logger.warn('rollback with no active and no previous model ignored', { rolloutId: cmd.rolloutId });
      return;
    }
    const installed = this.store.get(target);
    if (!installed) {
      const kept = this.store.list(target.modelId).map((m) => m.ref.version);
      await this.say(ctx, job, target, 'failed', { reason: `rollback: ${refText(target)} is not in the model store (kept versions: ${kept.join(', ') || 'none'})` });
      return;
    }
    this.store.setActive(target, this.o.now());
    ctx.setActiveModel(target);
    ctx.logger.info('rolled back', { rolloutId: cmd.rolloutId, from: current, to: target });
    if (current && !sameRef(current, target)) await this.say(ctx, job, current, 'rolled-back', { reason: `rolled back to ${refText(target)}` });
    await this.say(ctx, job, target, 'active', { reason: 'reactivated by rollback' });
    await ctx.publishBirth().catch(() => {});
  }

  async benchmarkCommand(cmd: BenchmarkCommand, ctx: CommandContext): Promise<void> {
    const installed = this.store.get(cmd.model);
    if (!installed) {
      await this.say(ctx, { rolloutId: null }, cmd.model, 'failed', { reason: `benchmark: ${refText(cmd.model)} is not installed on this device` });
      return;
    }
    const run = async (): Promise<void> => {
      const r = await this.benchmark(installed, ctx);
      if (!r.ok) await this.say(ctx, { rolloutId: null }, cmd.model, 'failed', { reason: r.error });
      else await ctx.report({ kind: 'benchmark', rolloutId: null, model: cmd.model, result: r.value.result, baseline: r.value.baseline });
    };
    this.chain = this.chain.then(run, run).catch((e: unknown) => ctx.logger.error('benchmark failed', { error: errorMessage(e) }));
    await this.chain;
  }

  /**
   * A tuning canary's evaluation: wait until the device is idle enough, download the candidate into
   * its own folder (not the model store), benchmark it on the eval set, delete it, then report. It
   * runs on the same chain as deploys (one at a time) and never touches the active model.
   */
  async evaluate(cmd: EvaluateCommand, ctx: CommandContext): Promise<void> {
    const m = cmd.manifest;
    const ref = { modelId: m.modelId, version: m.version };
    const key = `${cmd.tuningId}/${this.jobKey(ref)}`;
    const tell = (state: EvaluationReport['state'], extra: { result?: BenchmarkResult; reason?: string; loadPerCore?: number } = {}): Promise<void> =>
      ctx
        .report({ kind: 'evaluation', tuningId: cmd.tuningId, model: ref, state, result: extra.result ?? null, reason: extra.reason?.slice(0, 1000) ?? null, loadPerCore: extra.loadPerCore ?? null })
        .catch((e: unknown) => ctx.logger.warn('evaluation report not sent', { tuningId: cmd.tuningId, state, error: errorMessage(e) }));
    const problem = manifestProblem(m, ctx.signingPublicKey, this.o.now());
    if (problem) {
      ctx.logger.warn('evaluate refused', { tuningId: cmd.tuningId, modelId: m.modelId, version: m.version, reason: problem });
      return tell('failed', { reason: problem });
    }
    if (this.evaluations.has(key)) {
      ctx.logger.info('evaluation already queued or running', { tuningId: cmd.tuningId, modelId: m.modelId, version: m.version });
      return;
    }
    this.evaluations.add(key);
    await tell('queued');
    const run = async (): Promise<void> => {
      const dir = join(this.evaluationsDir, encodeURIComponent(key));
      const signal = this.abort.signal;
      try {
        const load = await this.waitForIdle(cmd.idle, () => void tell('waiting-for-idle', { loadPerCore: this.o.loadPerCore() }), signal);
        if (signal.aborted) return;
        if (!load.idle) return await tell('failed', { reason: `device busy: load ${load.loadPerCore.toFixed(2)} per core stayed above ${cmd.idle.maxLoadPerCore} for ${cmd.idle.idleWaitSeconds} s`, loadPerCore: load.loadPerCore });
        await tell('downloading', { loadPerCore: load.loadPerCore });
        const files = await this.fetchParts(m, ctx, dir, { rolloutId: null, tuningId: cmd.tuningId, state: () => {} });
        if (signal.aborted) return;
        await tell('benchmarking', { loadPerCore: load.loadPerCore });
        const bench = await this.benchmarkFiles(ref, m, files, ctx);
        rmSync(dir, { recursive: true, force: true });
        if (signal.aborted) return;
        if (bench.ok) await tell('done', { result: bench.value.result, loadPerCore: load.loadPerCore });
        else await tell('failed', { reason: bench.error });
      } catch (e) {
        rmSync(dir, { recursive: true, force: true });
        if (signal.aborted) return;
        ctx.logger.warn('evaluation failed', { tuningId: cmd.tuningId, modelId: m.modelId, version: m.version, error: errorMessage(e) });
        await tell('failed', { reason: errorMessage(e) });
      } finally {
        rmSync(dir, { recursive: true, force: true });
        this.evaluations.delete(key);
      }
    };
    this.chain = this.chain.then(run, run);
  }

  /** Polls the load until it is at or below the threshold, or the wait runs out. */
  private async waitForIdle(idle: EvaluationCommandIdle, onWaiting: () => void, signal: AbortSignal): Promise<{ idle: boolean; loadPerCore: number }> {
    const deadline = this.o.now() + idle.idleWaitSeconds * 1000;
    let said = false;
    for (;;) {
      const load = this.o.loadPerCore();
      if (load <= idle.maxLoadPerCore) return { idle: true, loadPerCore: load };
      if (this.o.now() >= deadline || signal.aborted) return { idle: false, loadPerCore: load };
      if (!said) onWaiting();
      said = true;
      await new Promise((r) => setTimeout(r, Math.max(10, Math.min(this.o.idlePollMs, deadline - this.o.now()))));
    }
  }

  private jobKey(ref: ModelRef): string {
    return `${encodeURIComponent(ref.modelId)}@${ref.version}`;
  }

  /** Job files and transfer folders are named by ids that follow the id rule and must stay inside their folder. */
  private jobFile(ref: ModelRef): string {
    return pathInside(this.jobsDir, 'model', ref.modelId) + `@${ref.version}.json`;
  }

  private transferDir(transferId: string): string {
    return pathInside(this.transfersDir, 'transfer', transferId);
  }

  private enqueue(job: Job, ctx: CommandContext): void {
    const key = this.jobKey({ modelId: job.manifest.modelId, version: job.manifest.version });
    this.queued.add(key);
    const run = (): Promise<void> => this.runJob(job, ctx).finally(() => this.queued.delete(key));
    this.chain = this.chain.then(run, run);
  }

  private async say(
    ctx: CommandContext,
    job: { rolloutId: string | null },
    model: ModelRef,
    state: InstallState,
    extra: { progress?: number; reason?: string } = {},
  ): Promise<void> {
    await ctx
      .report({ kind: 'install-state', rolloutId: job.rolloutId, model, state, progress: extra.progress ?? null, reason: extra.reason?.slice(0, 1000) ?? null })
      .catch((e: unknown) => ctx.logger.warn('install-state report not sent', { state, error: errorMessage(e) }));
  }

  private async runJob(job: Job, ctx: CommandContext): Promise<void> {
    const m = job.manifest;
    const ref = { modelId: m.modelId, version: m.version };
    const log = ctx.logger;
    const signal = this.abort.signal;
    if (signal.aborted) return;
    const controller = new AbortController();
    const stop = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    this.current = { ref, controller, download: null };
    try {
      let installed = this.store.get(ref);
      if (!installed || installed.manifest.sha256 !== m.sha256) installed = await this.fetchAndInstall(job, ctx, controller.signal);
      else log.info('model already in the store; not downloading it again', { transferId: m.transferId, modelId: m.modelId, version: m.version });
      if (signal.aborted) return;

      await this.say(ctx, job, ref, 'benchmarking');
      const bench = await this.benchmark(installed, ctx);
      if (signal.aborted) return;
      if (!bench.ok) {
        await this.say(ctx, job, ref, 'failed', { reason: bench.error });
        rmSync(this.jobFile(ref), { force: true });
        return;
      }
      await ctx.report({ kind: 'benchmark', rolloutId: job.rolloutId, model: ref, result: bench.value.result, baseline: bench.value.baseline });

      this.store.setActive(ref, this.o.now());
      ctx.setActiveModel(ref);
      const pruned = this.store.prune(ref.modelId);
      if (pruned.length) log.info('old model versions removed', { modelId: ref.modelId, versions: pruned.map((p) => p.version) });
      await this.say(ctx, job, ref, 'active');
      rmSync(this.jobFile(ref), { force: true });
      await ctx.publishBirth().catch(() => {});
    } catch (e) {
      if (signal.aborted) return; // the agent is stopping: the job file stays for the next start
      const reason = errorMessage(controller.signal.aborted ? (controller.signal.reason ?? e) : e);
      log.error('delivery failed', { transferId: m.transferId, rolloutId: job.rolloutId, modelId: m.modelId, version: m.version, error: reason });
      await this.say(ctx, job, ref, 'failed', { reason });
      rmSync(this.jobFile(ref), { force: true });
      // the job is over: its partial downloads (e.g. after ENOSPC) are of no use and only hold disk (issue 8 item 12)
      for (const id of [m.transferId, ...m.companions.map((c) => c.transferId)]) rmSync(this.transferDir(id), { recursive: true, force: true });
    } finally {
      signal.removeEventListener('abort', stop);
      if (this.current?.controller === controller) this.current = null;
    }
  }

  /** Companions first, the model last; all or nothing into the store. */
  private async fetchAndInstall(job: Job, ctx: CommandContext, signal: AbortSignal): Promise<InstalledModel> {
    const m = job.manifest;
    const ref = { modelId: m.modelId, version: m.version };
    const files = await this.fetchParts(m, ctx, this.transfersDir, {
      rolloutId: job.rolloutId,
      state: (state, progress) => void this.say(ctx, job, ref, state, progress === undefined ? {} : { progress }),
      signal,
    });
    const installed = this.store.install(m, files, this.o.now());
    // async: a recursive rmSync here blocked the event loop for tens of ms per agent in the delivery profile
    await Promise.all([m.transferId, ...m.companions.map((c) => c.transferId)].map((t) => rm(this.transferDir(t), { recursive: true, force: true })));
    return installed;
  }

  /** Downloads the companions and the model of a manifest into `dir` (resumable, hash-checked); returns each part's file. */
  private async fetchParts(
    m: ModelManifest,
    ctx: CommandContext,
    dir: string,
    o: { rolloutId: string | null; tuningId?: string; state: (state: 'downloading' | 'verifying', progress?: number) => void; signal?: AbortSignal },
  ): Promise<Partial<Record<'model' | CompanionRole, string>>> {
    const log = ctx.logger;
    const job = { rolloutId: o.rolloutId, ...(o.tuningId ? { tuningId: o.tuningId } : {}) };
    const parts: { role: 'model' | CompanionRole; spec: TransferSpec }[] = [
      ...m.companions.map((c) => ({ role: c.role, spec: { transferId: c.transferId, sizeBytes: c.sizeBytes, chunkSize: m.chunkSize, sha256: c.sha256, chunkSha256: c.chunkSha256 } })),
      { role: 'model' as const, spec: { transferId: m.transferId, sizeBytes: m.sizeBytes, chunkSize: m.chunkSize, sha256: m.sha256, chunkSha256: m.chunkSha256 } },
    ];
    const total = parts.reduce((s, p) => s + p.spec.sizeBytes, 0);
    const held = new Map<string, number>();
    const downloads = parts.map(
      (p) =>
        new Download(p.spec, {
          dir: pathInside(dir, 'transfer', p.spec.transferId),
          window: this.o.window,
          sharedWindow: this.o.fanoutWindow,
          requestTimeoutMs: this.o.requestTimeoutMs,
          request: (id, chunks, ask) => ctx.requestChunks(id, chunks, ask),
          onProgress: (bytes) => {
            held.set(p.spec.transferId, bytes);
            progress();
          },
          ...(p.role === 'model' ? { onVerifying: () => o.state('verifying') } : {}),
          stallTimeoutMs: this.o.stallTimeoutMs,
          deadlineAt: m.expiresAt,
          now: this.o.now,
          log,
          signal: o.signal ?? this.abort.signal,
        }),
    );
    let lastStep = -1;
    let lastAt = -Infinity;
    const progress = (force = false): void => {
      const got = [...held.values()].reduce((s, b) => s + b, 0);
      const step = Math.floor((got / total) * 10);
      if (!force && (step === lastStep || this.o.now() - lastAt < this.o.progressIntervalMs)) return;
      lastStep = step;
      lastAt = this.o.now();
      o.state('downloading', Math.min(1, got / total));
    };

    try {
      for (let i = 0; i < parts.length; i++) held.set(parts[i]!.spec.transferId, await downloads[i]!.open());
      const have = [...held.values()].reduce((s, b) => s + b, 0);
      const free = await this.o.freeBytes(this.stateDir);
      const need = total - have + this.o.minFreeBytes;
      if (free < need) {
        throw new Error(`not enough disk space in ${this.stateDir}: need ${((total - have) / MiB).toFixed(1)} MiB plus ${(this.o.minFreeBytes / MiB).toFixed(0)} MiB headroom, ${(free / MiB).toFixed(1)} MiB free`);
      }
      log.info('download starting', { transferId: m.transferId, ...job, sizeBytes: total, alreadyHeldBytes: have, window: this.o.window });
      progress(true);
      const files: Partial<Record<'model' | CompanionRole, string>> = {};
      for (let i = 0; i < parts.length; i++) {
        const d = downloads[i]!;
        const id = d.spec.transferId;
        this.downloads.set(id, d);
        this.downloadStats.set(id, d.stats);
        if (this.downloadStats.size > 64) this.downloadStats.delete(this.downloadStats.keys().next().value!);
        if (this.current) this.current.download = d;
        try {
          if (parts[i]!.role === 'model') o.state('downloading', Math.min(1, [...held.values()].reduce((s, b) => s + b, 0) / total));
          // listen on the shared topic before the first ask (the join): what a wave publishes from then on reaches this
          // device too; without a grant the SUBSCRIBE is refused and every chunk comes on the device's own topic
          if (this.o.fanout && ctx.listenTransfer && (await ctx.listenTransfer(id))) d.shareAsks();
          files[parts[i]!.role] = await d.run();
        } finally {
          this.downloads.delete(id);
          await ctx.unlistenTransfer?.(id);
        }
        log.info('transfer complete', { transferId: id, role: parts[i]!.role, ...d.stats });
      }
      return files;
    } finally {
      await Promise.all(downloads.map((d) => d.close()));
    }
  }

  private benchmark(m: InstalledModel, ctx: CommandContext): Promise<BenchOutcome> {
    const file = (role: 'model' | CompanionRole): string | null => this.store.file(m, role);
    return this.benchmarkFiles(m.ref, m.manifest, { model: file('model'), evalset: file('evalset'), 'reference-predictions': file('reference-predictions'), 'fp32-baseline': file('fp32-baseline') }, ctx);
  }

  private async benchmarkFiles(ref: ModelRef, manifest: ModelManifest, files: Partial<Record<'model' | CompanionRole, string | null>>, ctx: CommandContext): Promise<BenchOutcome> {
    const m = { ref, manifest };
    const modelPath = files.model;
    if (!this.o.runBenchmarks) return { ok: false, error: 'benchmarks are turned off on this agent (runBenchmarks: false)' };
    if (!modelPath) return { ok: false, error: `${refText(m.ref)}: model file missing from the store` };
    let evalSet = null;
    const evalPath = files.evalset;
    if (evalPath) {
      const parsed = parseEvalSet(new Uint8Array(readFileSync(evalPath)));
      if (!parsed.ok) return { ok: false, error: `eval set: ${parsed.error}` };
      evalSet = parsed.value;
    }
    const refPath = files['reference-predictions'];
    const referencePredictions = refPath ? new Uint8Array(readFileSync(refPath)) : null;
    const common = {
      settings: m.manifest.benchmark,
      runtime: m.manifest.runtime,
      evalSet,
      referencePredictions,
      logger: ctx.logger,
      signal: this.abort.signal,
      ...(this.o.trtexecPath !== undefined ? { trtexecPath: this.o.trtexecPath } : {}),
    };
    const result = await runBenchmark({ modelPath, ...common });
    if (!result.ok) return { ok: false, error: `benchmark: ${result.error}` };
    let baseline: BenchmarkResult | null = null;
    const basePath = files['fp32-baseline'];
    if (basePath && !this.abort.signal.aborted) {
      const b = await runBenchmark({ modelPath: basePath, ...common });
      if (b.ok) baseline = b.value.result;
      else ctx.logger.warn('fp32 baseline benchmark failed; reporting without a baseline', { modelId: m.ref.modelId, version: m.ref.version, error: b.error });
    }
    ctx.logger.info('benchmark done', { modelId: m.ref.modelId, version: m.ref.version, p50Ms: result.value.result.latencyMs.p50, baselineP50Ms: baseline?.latencyMs.p50 ?? null, accuracy: result.value.result.accuracy });
    return { ok: true, value: { result: result.value.result, baseline } };
  }
}

export function createDeliveryAgent(stateDir: string, opts: DeliveryAgentOptions = {}): DeliveryAgent {
  return new DeliveryAgent(stateDir, opts);
}

export const hasPendingJobs = (stateDir: string): boolean => {
  const dir = join(stateDir, 'delivery', 'jobs');
  return existsSync(dir) && readdirSync(dir).some((n) => n.endsWith('.json'));
};
