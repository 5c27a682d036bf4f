import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ModelManifestSchema, PROTOCOL_VERSION, formatZodError, newMsgId, type BenchmarkResult, type InstallState, type ModelManifest, type ModelRef, type Report } from '../../shared/messages.ts';
import { BenchmarkSettingsSchema, type EvaluationSettings } from '../../shared/profile.ts';
import { signManifest } from '../../shared/signing.ts';
import { DeliverySourceSchema, type DeliverySource } from '../../shared/transfer.ts';
import { ThrottledLog } from '../../shared/throttled-log.ts';
import type { ControlPlaneContext } from '../context.ts';
import { silentLogger } from '../log.ts';
import { DeliveryStore } from './delivery-store.ts';
import { TransferServer, type FrameFilter, type RegisteredTransfer } from './transfer-server.ts';
import { LONG_BUCKETS } from '../metrics.ts';

export type DeliverOptions = {
  rolloutId?: string | null;
  /** Default 256 KiB. */
  chunkSize?: number;
  /** How long the signed manifest stays valid; default 24 h. */
  ttlMs?: number;
  /** Merged over the device profile's benchmark settings, then validated. */
  benchmark?: Record<string, unknown>;
};

export type Delivery = { deliveryId: string; manifest: ModelManifest };

export type InstallStateEvent = { deviceId: string; model: ModelRef; state: InstallState; reason: string | null; rolloutId: string | null; progress: number | null };
export type BenchmarkEvent = { deviceId: string; model: ModelRef; rolloutId: string | null; result: BenchmarkResult; baseline: BenchmarkResult | null; speedup: number | null };

export type DeliveryEvents = { 'install-state': [InstallStateEvent]; benchmark: [BenchmarkEvent] };

/** An error the caller caused (unknown device, bad source file); `code` maps to an HTTP status in routes.ts. */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  constructor(
    readonly code: 'unknown-device' | 'bad-source' | 'no-profile' | 'bad-settings',
    message: string,
  ) {
    super(message);
  }
}

const DAY_MS = 24 * 3600 * 1000;

export type DeliveryServiceOptions = {
  frameFilter?: FrameFilter | undefined;
  maxChunksInFlight?: number;
  /** Shared per-transfer data topic (default true); false keeps every chunk on the per-device path. */
  fanout?: boolean;
  waveIdleMs?: number;
  gatherMs?: number;
};

/** Install states after which the device no longer needs the transfer (verifying may still re-fetch bad chunks). */
const DONE_WITH_TRANSFER = new Set<string>(['benchmarking', 'active', 'failed', 'rolled-back']);
/** Evaluation states after which the canary no longer needs the candidate's transfers. */
const EVALUATION_DONE_WITH_TRANSFER = new Set<string>(['benchmarking', 'done', 'failed']);
/** One install's history: a real install has about six states; a flapping device stops adding lines here. */
export const MAX_EVENTS_PER_INSTALL = 100;
/** Benchmark rows per install (a re-run `benchmark` command adds one each). */
export const MAX_BENCHMARKS_PER_INSTALL = 20;
/** int8 vs fp32 on one device: anything outside 1/100x..100x is not a measurement of the same model. */
const MIN_PLAUSIBLE_SPEEDUP = 0.01;
const MAX_PLAUSIBLE_SPEEDUP = 100;

/**
 * Model delivery: registers files as transfers, signs and sends `deploy` manifests, serves chunks, and turns
 * the devices' reports into install history and benchmark rows. Rollouts subscribe to `onInstallState` / `onBenchmark`.
 */
export class DeliveryService {
  readonly events = new EventEmitter<DeliveryEvents>();
  /** When each (device, model version) reported "benchmarking", for the benchmark-duration histogram. */
  private readonly benchStarted = new Map<string, number>();
  private bound: { ctx: ControlPlaneContext; store: DeliveryStore; server: TransferServer } | null = null;
  private refusals: ThrottledLog = new ThrottledLog(silentLogger);
  private sweep: NodeJS.Timeout | null = null;

  constructor(private readonly opts: DeliveryServiceOptions = {}) {}

  /** Called by the extension each time a control plane starts (a restart brings a new context). */
  bind(ctx: ControlPlaneContext): void {
    if (this.bound?.ctx === ctx) return;
    const store = new DeliveryStore(ctx.db);
    const server = new TransferServer({
      store,
      publish: (topic, payload) => ctx.fleet.publish(topic, payload, 1),
      metrics: ctx.metrics,
      log: ctx.log.child({ room: 'delivery' }),
      now: ctx.now,
      frameFilter: this.opts.frameFilter,
      ...(this.opts.maxChunksInFlight ? { maxChunksInFlight: this.opts.maxChunksInFlight } : {}),
      fanout: this.opts.fanout ?? true,
      ...(this.opts.waveIdleMs ? { waveIdleMs: this.opts.waveIdleMs } : {}),
      ...(this.opts.gatherMs ? { gatherMs: this.opts.gatherMs } : {}),
    });
    this.bound = { ctx, store, server };
    this.refusals = new ThrottledLog(ctx.log.child({ room: 'delivery' }), { now: ctx.now });
    // a new broker session (the embedded broker restarts with the control plane; the Mosquitto plugin is resynced from
    // a fresh control plane's grants) knows no transfer grants: grant what is still open again, in the background
    for (const t of store.openTransfers()) void this.grant(t, store.openOfferDevices(t));
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = setInterval(() => this.closeExpired(), 60_000);
    this.sweep.unref();
  }

  unbind(): void {
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = null;
    this.bound = null;
  }

  /** A failed grant is not fatal: the agent's SUBSCRIBE is refused and it pulls every chunk on its own topic. */
  private async grant(transferId: string, deviceIds: string[]): Promise<void> {
    const b = this.bound;
    if (!b || !deviceIds.length) return;
    try {
      await b.ctx.broker.grantTransferRead(transferId, deviceIds);
    } catch (e) {
      b.ctx.metrics.inc('edgefleet_delivery_fanout_grant_failures_total', 'Shared-topic read grants the broker refused or did not answer');
      b.ctx.log.warn('fan-out read grant failed; those devices pull on their own topic', { transferId, devices: deviceIds.length, error: String(e) });
    }
  }

  /** Closes the offers of one finished delivery; a transfer with no open offer left has ended: its shared topic is revoked. */
  private closeDelivery(deviceId: string, deliveryId: string, at: number): void {
    const b = this.bound;
    if (!b) return;
    const closed = b.store.closeOffers(deviceId, deliveryId, at);
    if (closed.length) void this.endTransfers(closed);
  }

  private async endTransfers(transferIds: string[]): Promise<void> {
    const b = this.bound;
    if (!b) return;
    for (const t of new Set(transferIds)) {
      if (b.store.hasOpenOffer(t)) continue;
      b.server.endTransfer(t);
      // never rejects (the broker adapters queue a revoke while the broker is away)
      await b.ctx.broker.revokeTransfer(t);
      b.ctx.log.info('transfer ended; shared topic revoked', { transferId: t, published: b.server.publishedStats(t) });
    }
  }

  private closeExpired(): void {
    const b = this.bound;
    if (!b) return;
    try {
      const ended = b.store.closeExpiredOffers(b.ctx.now());
      if (ended.length) void this.endTransfers(ended);
    } catch (e) {
      b.ctx.log.warn('expired offers not closed', { error: String(e) });
    }
  }

  /** Turns the shared topic on or off for deliveries from now on (the delivery bench compares both on one control plane). */
  setFanout(on: boolean): void {
    this.opts.fanout = on;
    this.b.server.fanout = on;
  }

  private get b(): NonNullable<DeliveryService['bound']> {
    if (!this.bound) throw new Error('delivery service used before the control plane started');
    return this.bound;
  }

  get store(): DeliveryStore {
    return this.b.store;
  }

  get transfers(): TransferServer {
    return this.b.server;
  }

  registerTransfer(filePath: string, chunkSize?: number): Promise<RegisteredTransfer> {
    return this.b.server.register(filePath, chunkSize);
  }

  onInstallState(cb: (deviceId: string, model: ModelRef, state: InstallState, reason: string | null, rolloutId: string | null) => void): () => void {
    const l = (e: InstallStateEvent): void => cb(e.deviceId, e.model, e.state, e.reason, e.rolloutId);
    this.events.on('install-state', l);
    return () => this.events.off('install-state', l);
  }

  onBenchmark(cb: (e: BenchmarkEvent) => void): () => void {
    this.events.on('benchmark', cb);
    return () => this.events.off('benchmark', cb);
  }

  /** Registers the files, offers them to the device, signs the manifest and publishes `deploy`. */
  async deliver(deviceId: string, source: DeliverySource, opts: DeliverOptions = {}): Promise<Delivery> {
    const { ctx, store } = this.b;
    const { manifest, deliveryId, transferIds } = await this.prepare(deviceId, source, opts);
    const now = ctx.now();
    const rolloutId = opts.rolloutId ?? null;
    await this.offer(deviceId, transferIds, deliveryId, now, manifest.expiresAt, source);
    store.createInstall({ deviceId, modelId: source.modelId, version: source.version, deliveryId, rolloutId, transferId: manifest.transferId, createdAt: now }, manifest);
    await ctx.fleet.publishCommand(deviceId, { v: PROTOCOL_VERSION, msgId: newMsgId(), ts: now, cmd: 'deploy', rolloutId, manifest });
    ctx.log.info('model deploy sent', { deviceId, rolloutId, deliveryId, transferId: manifest.transferId, modelId: source.modelId, version: source.version, sizeBytes: manifest.sizeBytes, companions: manifest.companions.length });
    return { deliveryId, manifest };
  }

  /**
   * A tuning evaluation: the same signed manifest and offered transfers as a deploy, but the command
   * is `evaluate` (the agent benchmarks, reports and deletes the model; it never activates it) and
   * no install row is created. The fp32 baseline is left out: the fp32 student is a candidate itself.
   */
  async evaluate(deviceId: string, source: DeliverySource, opts: DeliverOptions & { tuningId: string; idle: EvaluationSettings }): Promise<Delivery> {
    const { ctx } = this.b;
    const src = { ...source, companions: source.companions.filter((c) => c.role !== 'fp32-baseline') };
    const { manifest, deliveryId, transferIds } = await this.prepare(deviceId, src, opts);
    const now = ctx.now();
    await this.offer(deviceId, transferIds, deliveryId, now, manifest.expiresAt, source);
    await ctx.fleet.publishCommand(deviceId, { v: PROTOCOL_VERSION, msgId: newMsgId(), ts: now, cmd: 'evaluate', tuningId: opts.tuningId, manifest, idle: opts.idle });
    ctx.log.info('evaluate sent', { deviceId, tuningId: opts.tuningId, deliveryId, transferId: manifest.transferId, modelId: source.modelId, version: source.version, sizeBytes: manifest.sizeBytes });
    return { deliveryId, manifest };
  }

  /** Records the offers and, with fan-out on, grants the shared topics before the command goes out (so the agent's SUBSCRIBE is allowed). */
  private async offer(deviceId: string, transferIds: string[], deliveryId: string, now: number, expiresAt: number, model: { modelId: string; version: number }): Promise<void> {
    const { store, server } = this.b;
    for (const t of transferIds) {
      store.offer(deviceId, t, deliveryId, now, expiresAt, { modelId: model.modelId, version: model.version });
      server.noteOffer(t, deviceId);
    }
    if (server.fanout) for (const t of new Set(transferIds)) await this.grant(t, [deviceId]);
  }

  /** Registers the files as transfers and signs the manifest for one device. */
  private async prepare(deviceId: string, source: DeliverySource, opts: DeliverOptions): Promise<{ manifest: ModelManifest; deliveryId: string; transferIds: string[] }> {
    const { ctx, server } = this.b;
    const parsed = DeliverySourceSchema.safeParse(source);
    if (!parsed.success) throw new DeliveryError('bad-source', `bad delivery source: ${formatZodError(parsed.error)}`);
    const src = parsed.data;
    const device = ctx.devices.get(deviceId);
    if (!device || device.revokedAt !== null) throw new DeliveryError('unknown-device', `device "${deviceId}" is not enrolled`);
    const profile = ctx.profiles.find((p) => p.id === device.profileId) ?? ctx.profiles.find((p) => p.id === src.profileId);
    if (!profile) throw new DeliveryError('no-profile', `device "${deviceId}" has no profile yet and "${src.profileId}" is not a known profile; wait for its birth`);
    const settings = BenchmarkSettingsSchema.safeParse({ ...profile.benchmark, ...opts.benchmark });
    if (!settings.success) throw new DeliveryError('bad-settings', `benchmark settings: ${formatZodError(settings.error)}`);

    const register = async (path: string, what: string): Promise<RegisteredTransfer> => {
      try {
        return await server.register(path, opts.chunkSize);
      } catch (e) {
        throw new DeliveryError('bad-source', `${what}: ${(e as Error).message}`);
      }
    };
    const model = await register(src.modelPath, 'modelPath');
    const companions = [];
    for (const c of src.companions) {
      const t = await register(c.path, `companion ${c.role}`);
      companions.push({ role: c.role, transferId: t.transferId, sizeBytes: t.sizeBytes, sha256: t.sha256, chunkSha256: t.chunkSha256 });
    }
    const now = ctx.now();
    const unsigned = {
      modelId: src.modelId,
      version: src.version,
      profileId: profile.id,
      recipeId: src.recipeId,
      kind: src.kind,
      sizeBytes: model.sizeBytes,
      chunkSize: model.chunkSize,
      sha256: model.sha256,
      chunkSha256: model.chunkSha256,
      companions,
      transferId: model.transferId,
      benchmark: settings.data,
      runtime: profile.runtime.engine,
      centralAccuracy: src.centralAccuracy,
      expiresAt: now + (opts.ttlMs ?? DAY_MS),
    };
    const manifest = ModelManifestSchema.parse(signManifest(unsigned, ctx.signingKeys.privateKeyPem));
    return { manifest, deliveryId: `dlv-${randomUUID()}`, transferIds: [model.transferId, ...companions.map((c) => c.transferId)] };
  }

  /** Publishes `rollback` (to a named version, or the device's previous one). */
  async rollback(deviceId: string, to: ModelRef | null, rolloutId: string | null = null): Promise<void> {
    const { ctx } = this.b;
    if (!ctx.devices.get(deviceId)) throw new DeliveryError('unknown-device', `device "${deviceId}" is not enrolled`);
    await ctx.fleet.publishCommand(deviceId, { v: PROTOCOL_VERSION, msgId: newMsgId(), ts: ctx.now(), cmd: 'rollback', rolloutId, to });
    ctx.log.info('rollback sent', { deviceId, rolloutId, to });
  }

  /**
   * The `onReport` hook: install states and benchmark results into SQLite, then to subscribers. A report is believed
   * only for an install this control plane sent to this device (issue 8 item 7: benchmark reports for a model never
   * delivered moved a model report's median speed-up from 0.51 to 5,000,000); the rollout id is the install's, not
   * the device's claim; history and benchmark rows per install are capped.
   */
  ingestReport(deviceId: string, report: Report): void {
    const { ctx, store } = this.b;
    const at = ctx.now();
    if (report.kind === 'evaluation') {
      // the evaluation itself belongs to the tuning room (its own onReport hook); here only its offers end
      if (EVALUATION_DONE_WITH_TRANSFER.has(report.state)) {
        const closed = store.closeOffersOfModel(deviceId, report.model.modelId, report.model.version, at);
        if (closed.length) void this.endTransfers(closed);
      }
      return;
    }
    const install = store.install(deviceId, report.model.modelId, report.model.version);
    const refuse = (reason: string, fields: Record<string, unknown> = {}): void => {
      ctx.metrics.inc('edgefleet_reports_refused_total', 'Device reports refused, by kind and reason', { kind: report.kind, reason });
      this.refusals.warn('report refused', deviceId, `${report.kind}:${reason}`, { deviceId, kind: report.kind, reason, modelId: report.model.modelId, version: report.model.version, ...fields });
    };
    if (!install) return refuse('not-offered');
    const r = { ...report, rolloutId: install.rolloutId };
    if (r.kind === 'benchmark') {
      if (store.benchmarkCount(deviceId, r.model.modelId, r.model.version) >= MAX_BENCHMARKS_PER_INSTALL) return refuse('too-many-benchmarks', { max: MAX_BENCHMARKS_PER_INSTALL });
      const speedup = r.baseline && r.result.latencyMs.p50 > 0 ? r.baseline.latencyMs.p50 / r.result.latencyMs.p50 : null;
      if (speedup !== null && (speedup < MIN_PLAUSIBLE_SPEEDUP || speedup > MAX_PLAUSIBLE_SPEEDUP)) return refuse('implausible-speedup', { speedup });
    }
    ctx.metrics.inc('edgefleet_reports_ingested_total', 'Device reports stored, by kind', { kind: r.kind });
    const benchKey = `${deviceId}\0${r.model.modelId}\0${r.model.version}`;
    if (r.kind === 'install-state') {
      if (r.state === 'benchmarking') {
        // bounded: a device that never reports its benchmark must not grow this forever
        if (this.benchStarted.size >= 10_000) this.benchStarted.delete(this.benchStarted.keys().next().value!);
        this.benchStarted.set(benchKey, at);
      }
      const { changed, capped } = store.recordState(deviceId, { modelId: r.model.modelId, version: r.model.version, rolloutId: r.rolloutId, state: r.state, progress: r.progress, reason: r.reason, at }, MAX_EVENTS_PER_INSTALL);
      if (capped) refuse('events-capped', { max: MAX_EVENTS_PER_INSTALL });
      if (!changed && r.state === 'downloading') return;
      if (changed && DONE_WITH_TRANSFER.has(r.state)) this.closeDelivery(deviceId, install.deliveryId, at);
      const log = r.state === 'failed' ? ctx.log.warn.bind(ctx.log) : ctx.log.info.bind(ctx.log);
      log('install state', { deviceId, rolloutId: r.rolloutId, modelId: r.model.modelId, version: r.model.version, state: r.state, reason: r.reason, progress: r.progress });
      this.emitSafely('install-state', { deviceId, model: r.model, state: r.state, reason: r.reason, rolloutId: r.rolloutId, progress: r.progress });
      return;
    }
    const started = this.benchStarted.get(benchKey);
    if (started !== undefined) {
      this.benchStarted.delete(benchKey);
      // from the device's "benchmarking" report to its result, on the control plane's clock (device clocks drift)
      ctx.metrics.observe(
        'edgefleet_benchmark_duration_seconds',
        'On-device benchmark duration (int8 model and its fp32 baseline), from the benchmarking report to the result, by runtime and profile',
        { runtime: r.result.runtime, profile: ctx.devices.get(deviceId)?.profileId ?? 'none' },
        (at - started) / 1000,
        LONG_BUCKETS,
      );
    }
    const speedup = r.baseline && r.result.latencyMs.p50 > 0 ? r.baseline.latencyMs.p50 / r.result.latencyMs.p50 : null;
    store.addBenchmark({ deviceId, modelId: r.model.modelId, version: r.model.version, rolloutId: r.rolloutId, result: r.result, baseline: r.baseline, speedup, at });
    ctx.log.info('benchmark reported', {
      deviceId,
      rolloutId: r.rolloutId,
      modelId: r.model.modelId,
      version: r.model.version,
      p50Ms: r.result.latencyMs.p50,
      baselineP50Ms: r.baseline?.latencyMs.p50 ?? null,
      speedup,
      accuracy: r.result.accuracy,
    });
    this.emitSafely('benchmark', { deviceId, model: r.model, rolloutId: r.rolloutId, result: r.result, baseline: r.baseline, speedup });
  }

  /** A subscriber that throws must not take the MQTT handler down with it. */
  private emitSafely<K extends keyof DeliveryEvents>(event: K, ...args: DeliveryEvents[K]): void {
    for (const l of this.events.listeners(event)) {
      try {
        (l as (...a: DeliveryEvents[K]) => void)(...args);
      } catch (e) {
        this.bound?.ctx.log.error('delivery event subscriber failed', { event, error: String(e) });
      }
    }
  }
}
