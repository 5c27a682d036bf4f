import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { parseEvalSet } from '../../shared/evalset.ts';
import type { DeviceProfile } from '../../shared/profile.ts';
import {
  signedModelPayload,
  type Companion,
  type CompanionRole,
  type ModelKind,
  type ModelLineage,
  type ModelMetrics,
  type ModelRegister,
  type ModelRole,
  type ModelVersion,
  type VerifyReport,
} from '../../shared/registry.ts';
import { sha256Hex, signPayload, verifyPayload } from '../../shared/signing.ts';
import type { DeliverySource } from '../../shared/transfer.ts';
import type { ArtifactLine, ResultLine, TrainingJobSpec } from '../../shared/training.ts';
import type { Logger } from '../log.ts';
import type { Db } from '../store/db.ts';
import { RegistryStore, type ModelFilter, type StoredModelVersion } from './registry-store.ts';

/** Files up to this size are served from the very bytes that were hashed; larger ones are hashed, then streamed. */
const SERVE_FROM_MEMORY_MAX = 64 << 20;

export type RegistryDeps = {
  db: Db;
  signingKeys: { publicKeyPem: string; privateKeyPem: string };
  profiles: readonly DeviceProfile[];
  log: Logger;
  now: () => number;
};

/** What a finished training job hands the registry (the port the training room calls). */
export type JobArtifacts = {
  jobId: string;
  name: string;
  outputDir: string;
  spec: TrainingJobSpec;
  result: ResultLine;
  artifacts: ArtifactLine[];
  /** recipeId → profile id (or null). */
  profileMap: Record<string, string | null>;
};

/** An error the caller caused (bad file, unknown profile): the HTTP layer answers 400 naming `field`. */
export class RegistryInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** A registered file no longer matches its hash (or its record its signature): never handed out. */
export class RegistryIntegrityError extends Error {
  constructor(readonly report: VerifyReport) {
    super(`model ${report.id} v${report.version} failed verification: ${report.problems.join('; ')}`);
  }
}

export type VerifiedFile =
  | { ok: true; path: string; sha256: string; size: number; bytes?: Buffer }
  | { ok: false; problem: string };

/** One file waiting in the staging folder, hashed, to become part of a version folder. */
type Staged = { staged: string; name: string; sha256: string; size: number };

export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/**
 * The model registry: every model version is a folder `registry/<id>/<version>/` with its ONNX file
 * and companions (eval set, reference predictions), a row in SQLite, and an ed25519 signature by the
 * control plane's key over {id, version, sha256, size, profileId, recipeId, kind}.
 * Created before the control plane starts (so other rooms can hold it), usable once attached.
 */
export class ModelRegistry {
  private deps: (RegistryDeps & { store: RegistryStore }) | null = null;

  constructor(readonly dataDir: string) {}

  attach(deps: RegistryDeps): void {
    this.deps = { ...deps, store: new RegistryStore(deps.db) };
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

  private get d(): RegistryDeps & { store: RegistryStore } {
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
      metrics: s.metrics,
      diagnostics: s.diagnostics,
      companions: s.companions.map((c) => ({ ...c, path: this.abs(c.path) })),
      signature: s.signature,
      createdAt: s.createdAt,
    };
  }

  // ---------------------------------------------------------------- writes

  /** Registers every model artifact of a succeeded job, in one transaction (all or none). */
  async registerJob(job: JobArtifacts): Promise<ModelVersion[]> {
    const { now, log } = this.d;
    const evalset = job.artifacts.find((a) => a.kind === 'evalset');
    const order: ArtifactLine['kind'][] = ['teacher-fp32', 'student-hard-fp32', 'student-fp32', 'student-int8-qat', 'student-int8-ptq'];
    const models = job.artifacts.filter((a) => a.kind !== 'evalset').sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
    const staging = this.newStaging();
    try {
      const evalStaged = evalset ? await this.stage(staging, 'shared', join(job.outputDir, evalset.file), 'evalset.bin', evalset.sha256) : null;
      type Pending = { a: ArtifactLine; files: Staged[]; stagedDir: string };
      const pending: Pending[] = [];
      for (const [i, a] of models.entries()) {
        const sub = `m${i}`;
        const files = [await this.stage(staging, sub, join(job.outputDir, a.file), 'model.onnx', a.sha256)];
        if (a.referencePredictionsFile) files.push(await this.stage(staging, sub, join(job.outputDir, a.referencePredictionsFile), 'reference-predictions.bin'));
        if (evalStaged) files.push(await this.stage(staging, sub, evalStaged.staged, 'evalset.bin', evalStaged.sha256));
        pending.push({ a, files, stagedDir: join(staging, sub) });
      }

      const r = job.result;
      const created: StoredModelVersion[] = [];
      const byRole = new Map<string, StoredModelVersion>();
      this.commit(() => {
        for (const p of pending) {
          const a = p.a;
          const role = a.kind as Exclude<ArtifactLine['kind'], 'evalset'>;
          const recipeId = a.recipeId ?? null;
          const kind: ModelKind = role.startsWith('student-int8') ? 'int8' : 'fp32';
          const id = modelIdFor(job.name, role, recipeId);
          const parent = role === 'student-fp32' || role === 'student-hard-fp32' ? byRole.get('teacher-fp32') : kind === 'int8' ? byRole.get('student-fp32') : undefined;
          const recipeMetrics = recipeId ? r.metrics.recipes[recipeId] : undefined;
          const metrics: ModelMetrics = {
            accuracy: a.accuracy ?? null,
            teacherFp32: r.metrics.teacherFp32,
            studentFp32: r.metrics.studentFp32,
            studentInt8: role === 'student-int8-qat' ? (recipeMetrics?.qatInt8 ?? null) : role === 'student-int8-ptq' ? (recipeMetrics?.ptqInt8 ?? null) : null,
          };
          const lineage: ModelLineage = {
            jobId: job.jobId,
            source: 'training-job',
            teacher: job.spec.teacher,
            dataset: job.spec.dataset,
            spec: job.spec,
            versions: r.versions,
            parents: parent ? [{ id: parent.id, version: parent.version, role: parent.role }] : [],
            inputShape: a.inputShape,
            floatLayers: a.floatLayers ?? [],
            importedFrom: null,
          };
          const m = this.place({
            id,
            name: job.name,
            profileId: recipeId ? (job.profileMap[recipeId] ?? null) : null,
            recipeId,
            kind,
            role,
            jobId: job.jobId,
            lineage,
            metrics,
            diagnostics: role === 'student-int8-qat' && recipeId ? (r.diagnostics[recipeId] ?? null) : null,
            stagedDir: p.stagedDir,
            files: p.files,
            baseline: kind === 'int8' ? (byRole.get('student-fp32') ?? null) : null,
            createdAt: now(),
          });
          byRole.set(role === 'student-fp32' || role === 'teacher-fp32' ? role : `${role}:${recipeId}`, m);
          created.push(m);
        }
      });
      for (const m of created) log.info('model version registered', { modelId: m.id, version: m.version, jobId: job.jobId, role: m.role, sha256: m.sha256, size: m.size });
      return created.map((m) => this.view(m));
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** Registers a server-local ONNX file by hand; it is copied in, hashed and signed like a trained one. */
  async registerFile(req: ModelRegister): Promise<ModelVersion> {
    const { store, profiles, now, log } = this.d;
    let recipeId = req.recipeId ?? null;
    if (req.profileId !== undefined) {
      const p = profiles.find((x) => x.id === req.profileId);
      if (!p) throw new RegistryInputError('profileId', `unknown profile "${req.profileId}" (known: ${profiles.map((x) => x.id).join(', ')})`);
      recipeId ??= p.recipe.id;
    }
    if (req.kind === 'int8' && recipeId === null) throw new RegistryInputError('recipeId', 'an int8 model needs profileId or recipeId: which recipe quantized it');
    const id = req.id ?? (req.kind === 'fp32' ? `${req.name}-fp32` : `${req.name}-${recipeId}`);
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
      if (!parsed.success) throw new RegistryInputError('companions.evalset', `${req.companions.evalset}: ${parsed.error}`);
      evalCount = parsed.data.count;
    }
    if (req.companions.referencePredictions) {
      await checkFile(req.companions.referencePredictions, 'companions.referencePredictions');
      const size = (await stat(req.companions.referencePredictions)).size;
      if (evalCount !== null && size !== evalCount) {
        throw new RegistryInputError('companions.referencePredictions', `${req.companions.referencePredictions} has ${size} predictions, the eval set ${evalCount} samples (one u8 each)`);
      }
    }

    const staging = this.newStaging();
    try {
      const files = [await this.stage(staging, 'm', req.file, 'model.onnx')];
      if (req.companions.evalset) files.push(await this.stage(staging, 'm', req.companions.evalset, 'evalset.bin'));
      if (req.companions.referencePredictions) files.push(await this.stage(staging, 'm', req.companions.referencePredictions, 'reference-predictions.bin'));
      let m: StoredModelVersion | undefined;
      this.commit(() => {
        m = this.place({
          id,
          name: req.name,
          profileId: req.profileId ?? null,
          recipeId,
          kind: req.kind,
          role: req.role,
          jobId: null,
          lineage: {
            jobId: null,
            source: 'manual',
            teacher: null,
            dataset: null,
            spec: null,
            versions: null,
            parents: baseline ? [{ id: baseline.id, version: baseline.version, role: baseline.role }] : [],
            inputShape: null,
            floatLayers: [],
            importedFrom: req.file,
          },
          metrics: { accuracy: req.centralAccuracy ?? null, teacherFp32: null, studentFp32: baseline?.metrics.accuracy ?? null, studentInt8: null },
          diagnostics: null,
          stagedDir: join(staging, 'm'),
          files,
          baseline,
          createdAt: now(),
        });
      });
      const placed = m!;
      log.info('model version registered by hand', { modelId: placed.id, version: placed.version, from: req.file, sha256: placed.sha256, size: placed.size });
      return this.view(placed);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  private newStaging(): string {
    const dir = join(this.stagingRoot, randomBytes(6).toString('hex'));
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Copies a file into staging and hashes the copy; a copy that does not match what the trainer reported is refused. */
  private async stage(staging: string, sub: string, from: string, name: string, expectSha?: string): Promise<Staged> {
    const dir = join(staging, sub);
    await mkdir(dir, { recursive: true });
    const to = join(dir, name);
    try {
      await copyFile(from, to);
    } catch (e) {
      throw new Error(`cannot copy ${from} into the registry: ${(e as Error).message}`);
    }
    const h = await hashFile(to);
    if (expectSha !== undefined && h.sha256 !== expectSha) throw new Error(`${from}: sha256 ${h.sha256} differs from the trainer's ${expectSha}`);
    return { staged: to, name, ...h };
  }

  /** Runs `fn` in a transaction; version folders it moved in are removed again if it fails. */
  private placed: string[] = [];
  private commit(fn: () => void): void {
    this.placed = [];
    try {
      this.d.db.transaction(fn)();
    } catch (e) {
      for (const dir of this.placed) rmSync(dir, { recursive: true, force: true });
      throw e;
    } finally {
      this.placed = [];
    }
  }

  /** Inside a transaction: takes the next version, moves the staged folder there, signs, inserts. */
  private place(p: {
    id: string;
    name: string;
    profileId: string | null;
    recipeId: string | null;
    kind: ModelKind;
    role: ModelRole;
    jobId: string | null;
    lineage: ModelLineage;
    metrics: ModelMetrics;
    diagnostics: unknown;
    stagedDir: string;
    files: Staged[];
    baseline: StoredModelVersion | null;
    createdAt: number;
  }): StoredModelVersion {
    const { store, signingKeys } = this.d;
    const version = store.nextVersion(p.id);
    const finalDir = join(this.root, p.id, String(version));
    // a folder left by a crash between the move and the commit holds nothing the database knows
    if (existsSync(finalDir)) rmSync(finalDir, { recursive: true, force: true });
    mkdirSync(dirname(finalDir), { recursive: true });
    renameSync(p.stagedDir, finalDir);
    this.placed.push(finalDir);
    const rel = (name: string): string => relative(this.dataDir, join(finalDir, name));
    const model = p.files.find((f) => f.name === 'model.onnx')!;
    const companions: Companion[] = [];
    if (p.baseline) companions.push({ role: 'fp32-baseline', path: p.baseline.filePath, sha256: p.baseline.sha256, size: p.baseline.size, modelId: p.baseline.id, version: p.baseline.version });
    for (const f of p.files) {
      if (f.name === 'evalset.bin') companions.push({ role: 'evalset', path: rel(f.name), sha256: f.sha256, size: f.size });
      if (f.name === 'reference-predictions.bin') companions.push({ role: 'reference-predictions', path: rel(f.name), sha256: f.sha256, size: f.size });
    }
    const unsigned = { id: p.id, version, sha256: model.sha256, size: model.size, profileId: p.profileId, recipeId: p.recipeId, kind: p.kind };
    const m: StoredModelVersion = {
      ...unsigned,
      name: p.name,
      role: p.role,
      filePath: rel('model.onnx'),
      jobId: p.jobId,
      lineage: p.lineage,
      metrics: p.metrics,
      diagnostics: p.diagnostics,
      companions,
      signature: signPayload(signedModelPayload(unsigned), signingKeys.privateKeyPem),
      createdAt: p.createdAt,
    };
    store.insert(m);
    return m;
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
    const report = (await this.verify(id, version))!;
    if (!report.ok) throw new RegistryIntegrityError(report);
    return toDeliverySource(m, { profileId: target, recipeId: m.recipeId ?? profile!.recipe.id });
  }

  // ---------------------------------------------------------------- integrity

  /** Recomputes the file's and companions' hashes and checks the signature against the stored row. */
  async verify(id: string, version: number): Promise<VerifyReport | null> {
    const m = this.get(id, version);
    if (!m) return null;
    const problems: string[] = [];
    const signatureOk = verifyPayload(signedModelPayload(m), m.signature, this.d.signingKeys.publicKeyPem);
    if (!signatureOk) problems.push('the signature does not match the stored model record');
    let actual: { sha256: string; size: number } | null = null;
    try {
      actual = await hashFile(m.filePath);
    } catch (e) {
      problems.push(`model file unreadable: ${(e as Error).message}`);
    }
    const fileOk = actual !== null && actual.sha256 === m.sha256 && actual.size === m.size;
    if (actual && !fileOk) problems.push(`model file changed on disk: sha256 ${actual.sha256} (${actual.size} bytes), registered ${m.sha256} (${m.size} bytes)`);
    const companions: VerifyReport['companions'] = [];
    for (const c of m.companions) {
      let problem: string | null = null;
      try {
        const h = await hashFile(c.path);
        if (h.sha256 !== c.sha256) problem = `sha256 ${h.sha256}, registered ${c.sha256}`;
      } catch (e) {
        problem = `unreadable: ${(e as Error).message}`;
      }
      if (problem) problems.push(`companion ${c.role}: ${problem}`);
      companions.push({ role: c.role, path: c.path, ok: problem === null, problem });
    }
    const ok = problems.length === 0;
    if (!ok) this.d.log.error('model version failed verification', { modelId: id, version, problems });
    return {
      id,
      version,
      ok,
      file: { path: m.filePath, exists: existsSync(m.filePath), expectedSha256: m.sha256, actualSha256: actual?.sha256 ?? null, expectedSize: m.size, actualSize: actual?.size ?? null, ok: fileOk },
      signature: { ok: signatureOk, algorithm: 'ed25519' },
      companions,
      problems,
    };
  }

  /**
   * The model file (or a companion) checked against its registered hash right before it is served:
   * a file changed on disk is refused, never served silently. Small files come back as the very
   * bytes that were hashed.
   */
  async openVerified(id: string, version: number, companion?: CompanionRole): Promise<VerifiedFile | null> {
    const m = this.get(id, version);
    if (!m) return null;
    if (!verifyPayload(signedModelPayload(m), m.signature, this.d.signingKeys.publicKeyPem)) {
      this.d.log.error('refused to serve a model whose record does not match its signature', { modelId: id, version });
      return { ok: false, problem: 'the stored model record does not match its signature' };
    }
    const target = companion === undefined ? { path: m.filePath, sha256: m.sha256, size: m.size } : m.companions.find((c) => c.role === companion);
    if (!target) return { ok: false, problem: `model version has no ${companion} companion` };
    let bytes: Buffer | undefined;
    let actual: string;
    try {
      const st = await stat(target.path);
      if (st.size <= SERVE_FROM_MEMORY_MAX) {
        bytes = await readFile(target.path);
        actual = sha256Hex(bytes);
      } else {
        actual = (await hashFile(target.path)).sha256;
      }
    } catch (e) {
      return { ok: false, problem: `file unreadable: ${(e as Error).message}` };
    }
    if (actual !== target.sha256) {
      this.d.log.error('refused to serve a tampered file', { modelId: id, version, companion: companion ?? null, expected: target.sha256, actual });
      return { ok: false, problem: `${companion ?? 'model'} file changed on disk: sha256 ${actual}, registered ${target.sha256}` };
    }
    return { ok: true, path: target.path, sha256: target.sha256, size: target.size, ...(bytes ? { bytes } : {}) };
  }
}

/** `<name>-<recipeId>` for QAT int8, `-ptq` for the PTQ comparison, `<name>-fp32`, `<name>-teacher-fp32`... */
export function modelIdFor(name: string, role: Exclude<ArtifactLine['kind'], 'evalset'>, recipeId: string | null): string {
  switch (role) {
    case 'student-int8-qat':
      return `${name}-${recipeId}`;
    case 'student-int8-ptq':
      return `${name}-${recipeId}-ptq`;
    case 'student-fp32':
      return `${name}-fp32`;
    case 'student-hard-fp32':
      return `${name}-hard-fp32`;
    case 'teacher-fp32':
      return `${name}-teacher-fp32`;
  }
}

/** The accuracy devices compare against: eval-set top-1 (PyTorch, central), else the test-split metric of the role. */
export function centralAccuracy(m: ModelVersion): number | null {
  return m.metrics.accuracy ?? (m.kind === 'int8' ? m.metrics.studentInt8 : m.role === 'teacher-fp32' ? m.metrics.teacherFp32 : m.metrics.studentFp32);
}

/**
 * A version as delivery's source (shared/transfer.ts), without any check: prefer
 * `registry.deliverySource()`, which verifies the files first. `target` fills the profile and recipe
 * of a model built for none (fp32 fallbacks).
 */
export function toDeliverySource(m: ModelVersion, target?: { profileId: string; recipeId: string }): DeliverySource {
  const profileId = m.profileId ?? target?.profileId;
  const recipeId = m.recipeId ?? target?.recipeId;
  if (profileId === undefined || recipeId === undefined) throw new RegistryInputError('profileId', `${m.id} v${m.version} was built for no profile: name the profile it goes to`);
  return {
    modelId: m.id,
    version: m.version,
    profileId,
    recipeId,
    kind: m.kind,
    modelPath: m.filePath,
    centralAccuracy: centralAccuracy(m),
    companions: m.companions.map((c) => ({ role: c.role, path: c.path })),
  };
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
