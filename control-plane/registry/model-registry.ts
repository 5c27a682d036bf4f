import { rmSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { parseEvalSet } from '../../shared/evalset.ts';
import type { DeviceProfile } from '../../shared/profile.ts';
import type { CompanionRole, ModelRegister, ModelVersion, RuntimeCheck, VerifyReport } from '../../shared/registry.ts';
import type { DeliverySource } from '../../shared/transfer.ts';
import type { Logger } from '../log.ts';
import type { Db } from '../store/db.ts';
import { hostCpu } from './host-cpu.ts';
import { placeVersions } from './placement.ts';
import { RegistryInputError, artifactKey, jobDrafts, manualDraft, orderedModelArtifacts, toDeliverySource, type JobArtifacts } from './records.ts';
import { RegistryStore, type ModelFilter, type StoredModelVersion } from './registry-store.ts';
import { DEFAULT_RUNTIME_AGREEMENT_THRESHOLD, runRuntimeEval, runtimeCheck, type RuntimeEvalModel } from './runtime-eval.ts';
import { Staging, type Staged } from './staging.ts';
import { RegistryIntegrityError, openVerifiedFile, verifyVersion, type VerifiedFile } from './verification.ts';

export { RegistryInputError, centralAccuracy, modelIdFor, toDeliverySource, type JobArtifacts } from './records.ts';
export { hashFile } from './staging.ts';
export { RegistryIntegrityError, type VerifiedFile } from './verification.ts';

export type RegistryDeps = {
  db: Db;
  signingKeys: { publicKeyPem: string; privateKeyPem: string };
  profiles: readonly DeviceProfile[];
  log: Logger;
  now: () => number;
  /** Central runtime check: flag below this top-1 agreement with PyTorch (default 0.99). */
  runtimeAgreementThreshold?: number;
};

type Attached = RegistryDeps & { store: RegistryStore; threshold: number };

/**
 * The model registry: every model version is a folder `registry/<id>/<version>/` with its ONNX file
 * and companions (eval set, reference predictions), a row in SQLite, and an ed25519 signature by the
 * control plane's key over {id, version, sha256, size, profileId, recipeId, kind}. Before a version
 * is registered, its staged file runs in onnxruntime on this host (runtime-eval.ts) and the outcome
 * is stored with it. This class reads and orchestrates; staging, record building, placement and
 * verification live in their own modules. Created before the control plane starts (so other rooms
 * can hold it), usable once attached.
 */
export class ModelRegistry {
  private deps: Attached | null = null;

  constructor(readonly dataDir: string) {}

  attach(deps: RegistryDeps): void {
    this.deps = { ...deps, store: new RegistryStore(deps.db), threshold: deps.runtimeAgreementThreshold ?? DEFAULT_RUNTIME_AGREEMENT_THRESHOLD };
    rmSync(this.stagingRoot, { recursive: true, force: true });
  }

  detach(): void {
    this.deps = null;
  }

  get root(): string {
    return join(this.dataDir, 'registry');
  }

  private get stagingRoot(): string {
    return join(this.root, '.staging');
  }

  private get d(): Attached {
    if (!this.deps) throw new Error('the model registry is not started (createRegistryExtension must be in the control plane extensions)');
    return this.deps;
  }

  // ---------------------------------------------------------------- reads

  /** One version, or the newest one when `version` is absent. */
  get(id: string, version?: number): ModelVersion | null {
    const s = version === undefined ? this.d.store.latest(id) : this.d.store.get(id, version);
    return s ? this.view(s) : null;
  }

  versions(id: string): ModelVersion[] {
    return this.d.store.versions(id).map((s) => this.view(s));
  }

  list(filter: ModelFilter): { items: ModelVersion[]; total: number } {
    const { items, total } = this.d.store.list(filter);
    return { items: items.map((s) => this.view(s)), total };
  }

  /** The newest deliverable int8 version (QAT student or hand-registered) for a device profile. */
  latestFor(profileId: string, name?: string): ModelVersion | null {
    const s = this.d.store.latestFor(profileId, name);
    return s ? this.view(s) : null;
  }

  private abs(p: string): string {
    return isAbsolute(p) ? p : join(this.dataDir, p);
  }

  private view(s: StoredModelVersion): ModelVersion {
    return {
      id: s.id,
      version: s.version,
      name: s.name,
      profileId: s.profileId,
      recipeId: s.recipeId,
      kind: s.kind,
      role: s.role,
      filePath: this.abs(s.filePath),
      sha256: s.sha256,
      size: s.size,
      lineage: s.lineage,
      // rows from before the central runtime check have no `runtime`
      metrics: { ...s.metrics, runtime: s.metrics.runtime ?? null },
      diagnostics: s.diagnostics,
      companions: s.companions.map((c) => ({ ...c, path: this.abs(c.path) })),
      signature: s.signature,
      createdAt: s.createdAt,
    };
  }

  // ---------------------------------------------------------------- writes

  /** Registers every model artifact of a succeeded job, runtime-checked, in one transaction (all or none). */
  async registerJob(job: JobArtifacts): Promise<ModelVersion[]> {
    const staging = Staging.create(this.stagingRoot);
    try {
      const evalset = job.artifacts.find((a) => a.kind === 'evalset');
      const evalStaged = evalset ? await staging.stage('shared', join(job.outputDir, evalset.file), 'evalset.bin', evalset.sha256) : null;
      const staged = new Map<string, { dir: string; files: Staged[] }>();
      for (const [i, a] of orderedModelArtifacts(job.artifacts).entries()) {
        const sub = `m${i}`;
        const files = [await staging.stage(sub, join(job.outputDir, a.file), 'model.onnx', a.sha256)];
        if (a.referencePredictionsFile) files.push(await staging.stage(sub, join(job.outputDir, a.referencePredictionsFile), 'reference-predictions.bin'));
        if (evalStaged) files.push(await staging.stage(sub, evalStaged.staged, 'evalset.bin', evalStaged.sha256));
        staged.set(artifactKey(a), { dir: staging.folder(sub), files });
      }
      const runtime = await this.checkOnHost(staged);
      const created = this.place(jobDrafts(job, staged, runtime, this.d.now()));
      for (const m of created) this.d.log.info('model version registered', { modelId: m.id, version: m.version, jobId: job.jobId, role: m.role, sha256: m.sha256, size: m.size, runtimeAgreement: m.metrics.runtime?.agreement ?? null });
      return created;
    } finally {
      await staging.dispose();
    }
  }

  /** Registers a server-local ONNX file by hand; it is copied in, hashed, runtime-checked and signed like a trained one. */
  async registerFile(req: ModelRegister): Promise<ModelVersion> {
    const { store, profiles } = this.d;
    let recipeId = req.recipeId ?? null;
    if (req.profileId !== undefined) {
      const p = profiles.find((x) => x.id === req.profileId);
      if (!p) throw new RegistryInputError('profileId', `unknown profile "${req.profileId}" (known: ${profiles.map((x) => x.id).join(', ')})`);
      recipeId ??= p.recipe.id;
    }
    if (req.kind === 'int8' && recipeId === null) throw new RegistryInputError('recipeId', 'an int8 model needs profileId or recipeId: which recipe quantized it');
    await checkFile(req.file, 'file');
    const head = await readHead(req.file, 1);
    if (head[0] !== 0x08) throw new RegistryInputError('file', `${req.file} does not look like an ONNX model (a ModelProto starts with its ir_version field)`);

    let baseline: StoredModelVersion | null = null;
    if (req.companions.fp32Baseline) {
      baseline = store.get(req.companions.fp32Baseline.modelId, req.companions.fp32Baseline.version);
      if (!baseline) throw new RegistryInputError('companions.fp32Baseline', `model version ${req.companions.fp32Baseline.modelId} v${req.companions.fp32Baseline.version} is not in the registry`);
    }
    let evalCount: number | null = null;
    if (req.companions.evalset) {
      await checkFile(req.companions.evalset, 'companions.evalset');
      const parsed = parseEvalSet(await readFile(req.companions.evalset));
      if (!parsed.ok) throw new RegistryInputError('companions.evalset', `${req.companions.evalset}: ${parsed.error}`);
      evalCount = parsed.value.count;
    }
    if (req.companions.referencePredictions) {
      await checkFile(req.companions.referencePredictions, 'companions.referencePredictions');
      const size = (await stat(req.companions.referencePredictions)).size;
      if (evalCount !== null && size !== evalCount) {
        throw new RegistryInputError('companions.referencePredictions', `${req.companions.referencePredictions} has ${size} predictions, the eval set ${evalCount} samples (one u8 each)`);
      }
    }

    const staging = Staging.create(this.stagingRoot);
    try {
      const files = [await staging.stage('m', req.file, 'model.onnx')];
      if (req.companions.evalset) files.push(await staging.stage('m', req.companions.evalset, 'evalset.bin'));
      if (req.companions.referencePredictions) files.push(await staging.stage('m', req.companions.referencePredictions, 'reference-predictions.bin'));
      const runtime = await this.checkOnHost(new Map([['m', { dir: staging.folder('m'), files }]]));
      const [placed] = this.place([manualDraft(req, { recipeId, baseline, stagedDir: staging.folder('m'), files, runtime: runtime.get('m') ?? null, createdAt: this.d.now() })]);
      this.d.log.info('model version registered by hand', { modelId: placed!.id, version: placed!.version, from: req.file, sha256: placed!.sha256, size: placed!.size, runtimeAgreement: placed!.metrics.runtime?.agreement ?? null });
      return placed!;
    } finally {
      await staging.dispose();
    }
  }

  /**
   * Runs every staged model that has an eval set in onnxruntime on this host (a child process) and
   * turns each outcome into the stored check. A model the runtime cannot load is flagged, not refused:
   * the registry records what happened, rollouts and operators decide.
   */
  private async checkOnHost(staged: Map<string, { dir: string; files: Staged[] }>): Promise<Map<string, RuntimeCheck>> {
    const models: RuntimeEvalModel[] = [];
    for (const [key, s] of staged) {
      const file = (name: string): string | null => s.files.find((f) => f.name === name)?.staged ?? null;
      const evalsetPath = file('evalset.bin');
      if (evalsetPath) models.push({ key, modelPath: file('model.onnx')!, evalsetPath, referencePredictionsPath: file('reference-predictions.bin') });
    }
    const threads = 1;
    const outcomes = await runRuntimeEval({ threads, models }, { timeoutMs: 120_000 + 60_000 * models.length });
    const checks = new Map<string, RuntimeCheck>();
    const host = hostCpu();
    for (const [key, o] of outcomes) {
      const c = runtimeCheck(o, { host, threshold: this.d.threshold, threads, measuredAt: this.d.now() });
      if (c.flagged) this.d.log.warn('runtime check flagged a model', { artifact: key, agreement: c.agreement, accuracy: c.accuracy, reason: c.reason });
      checks.set(key, c);
    }
    return checks;
  }

  private place(drafts: Parameters<typeof placeVersions>[1]): ModelVersion[] {
    const { db, store, signingKeys } = this.d;
    return placeVersions({ db, store, privateKeyPem: signingKeys.privateKeyPem, root: this.root, dataDir: this.dataDir }, drafts).map((m) => this.view(m));
  }

  /**
   * The delivery source of a version, after checking its file, companions and signature (delivery
   * hashes and signs what it finds on disk, so a tampered file must stop here). `profileId` names the
   * target profile of a model built for none (an fp32 fallback); its recipe id comes from that profile.
   * Throws RegistryInputError (unknown version/profile, profile mismatch) or RegistryIntegrityError.
   */
  async deliverySource(id: string, version: number, profileId?: string): Promise<DeliverySource> {
    const m = this.get(id, version);
    if (!m) throw new RegistryInputError('model', `model version ${id} v${version} is not in the registry`);
    const target = profileId ?? m.profileId;
    if (target === null) throw new RegistryInputError('profileId', `${id} v${version} was built for no profile: name the profile it goes to`);
    if (m.profileId !== null && m.profileId !== target) throw new RegistryInputError('profileId', `${id} v${version} was built for profile ${m.profileId}, not ${target}`);
    const profile = this.d.profiles.find((p) => p.id === target);
    if (!profile && m.recipeId === null) throw new RegistryInputError('profileId', `unknown profile "${target}"`);
    const report = await verifyVersion(m, this.d.signingKeys.publicKeyPem, this.d.log);
    if (!report.ok) throw new RegistryIntegrityError(report);
    return toDeliverySource(m, { profileId: target, recipeId: m.recipeId ?? profile!.recipe.id });
  }

  // ---------------------------------------------------------------- integrity

  /** Recomputes the file's and companions' hashes and checks the signature against the stored row. */
  async verify(id: string, version: number): Promise<VerifyReport | null> {
    const m = this.get(id, version);
    return m ? verifyVersion(m, this.d.signingKeys.publicKeyPem, this.d.log) : null;
  }

  /** The model file (or a companion) checked against its registered hash right before it is served. */
  async openVerified(id: string, version: number, companion?: CompanionRole): Promise<VerifiedFile | null> {
    const m = this.get(id, version);
    return m ? openVerifiedFile(m, companion, this.d.signingKeys.publicKeyPem, this.d.log) : null;
  }
}

async function checkFile(path: string, field: string): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new RegistryInputError(field, `${path}: no such file on the control-plane host`);
  }
  if (!st.isFile()) throw new RegistryInputError(field, `${path} is not a regular file`);
  if (st.size === 0) throw new RegistryInputError(field, `${path} is empty`);
}

async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, 0);
    return buf;
  } finally {
    await fh.close();
  }
}
