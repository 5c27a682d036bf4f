import type { ModelKind, ModelLineage, ModelMetrics, ModelRegister, ModelRole, ModelVersion, RuntimeCheck } from '../../shared/registry.ts';
import type { DeliverySource } from '../../shared/transfer.ts';
import type { ArtifactLine, ResultLine, TrainingJobSpec } from '../../shared/training.ts';
import type { StoredModelVersion } from './registry-store.ts';
import type { Staged } from './staging.ts';

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

export type ModelArtifactKind = Exclude<ArtifactLine['kind'], 'evalset'>;

/** The version a new one descends from: one placed earlier in the same batch, or one already registered. */
export type ParentRef = { key: string } | { existing: StoredModelVersion };

/**
 * A model version before it has a version number, a folder and a signature. `parent` fills the
 * lineage; when `parentIsBaseline`, the parent is also the fp32 baseline devices benchmark against.
 */
export type Draft = {
  key: string;
  id: string;
  name: string;
  profileId: string | null;
  recipeId: string | null;
  kind: ModelKind;
  role: ModelRole;
  jobId: string | null;
  lineage: Omit<ModelLineage, 'parents'>;
  metrics: ModelMetrics;
  diagnostics: unknown;
  stagedDir: string;
  files: Staged[];
  parent: ParentRef | null;
  parentIsBaseline: boolean;
  createdAt: number;
};

/** The model artifacts of a job in registration order: parents before children. */
const ORDER: ModelArtifactKind[] = ['teacher-fp32', 'student-hard-fp32', 'student-fp32', 'student-int8-qat', 'student-int8-ptq'];

export function orderedModelArtifacts(artifacts: ArtifactLine[]): (ArtifactLine & { kind: ModelArtifactKind })[] {
  return artifacts.filter((a): a is ArtifactLine & { kind: ModelArtifactKind } => a.kind !== 'evalset').sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
}

/** Key of an artifact inside one job: its role, plus the recipe for the int8 ones. */
export const artifactKey = (a: { kind: ModelArtifactKind; recipeId?: string | null | undefined }): string => (a.recipeId ? `${a.kind}:${a.recipeId}` : a.kind);

/** The drafts of a succeeded job's models; `staged` and `runtime` are keyed by artifactKey(). */
export function jobDrafts(job: JobArtifacts, staged: Map<string, { dir: string; files: Staged[] }>, runtime: Map<string, RuntimeCheck>, createdAt: number): Draft[] {
  const r = job.result;
  return orderedModelArtifacts(job.artifacts).map((a) => {
    const key = artifactKey(a);
    const role = a.kind;
    const recipeId = a.recipeId ?? null;
    const kind: ModelKind = role.startsWith('student-int8') ? 'int8' : 'fp32';
    const recipeMetrics = recipeId ? r.metrics.recipes[recipeId] : undefined;
    const s = staged.get(key);
    if (!s) throw new Error(`artifact ${key} was not staged`);
    const parentKey = role === 'student-fp32' || role === 'student-hard-fp32' ? 'teacher-fp32' : kind === 'int8' ? 'student-fp32' : null;
    const hasParent = parentKey !== null && job.artifacts.some((x) => x.kind === parentKey);
    return {
      key,
      id: modelIdFor(job.name, role, recipeId),
      name: job.name,
      profileId: recipeId ? (job.profileMap[recipeId] ?? null) : null,
      recipeId,
      kind,
      role,
      jobId: job.jobId,
      lineage: {
        jobId: job.jobId,
        source: 'training-job',
        teacher: job.spec.teacher,
        dataset: job.spec.dataset,
        spec: job.spec,
        versions: r.versions,
        inputShape: a.inputShape,
        floatLayers: a.floatLayers ?? [],
        importedFrom: null,
        classNames: r.dataset?.classNames ?? job.artifacts.find((x) => x.kind === 'evalset')?.classNames ?? null,
      },
      metrics: {
        accuracy: a.accuracy ?? null,
        teacherFp32: r.metrics.teacherFp32,
        studentFp32: r.metrics.studentFp32,
        studentInt8: role === 'student-int8-qat' ? (recipeMetrics?.qatInt8 ?? null) : role === 'student-int8-ptq' ? (recipeMetrics?.ptqInt8 ?? null) : null,
        runtime: runtime.get(key) ?? null,
      },
      diagnostics: role === 'student-int8-qat' && recipeId ? (r.diagnostics[recipeId] ?? null) : null,
      stagedDir: s.dir,
      files: s.files,
      parent: hasParent ? { key: parentKey } : null,
      parentIsBaseline: kind === 'int8',
      createdAt,
    };
  });
}

/** The draft of a hand-registered file; `recipeId` is the resolved one (request or profile). */
export function manualDraft(req: ModelRegister, p: { recipeId: string | null; baseline: StoredModelVersion | null; stagedDir: string; files: Staged[]; runtime: RuntimeCheck | null; createdAt: number }): Draft {
  const id = req.id ?? (req.kind === 'fp32' ? `${req.name}-fp32` : `${req.name}-${p.recipeId}`);
  return {
    key: 'm',
    id,
    name: req.name,
    profileId: req.profileId ?? null,
    recipeId: p.recipeId,
    kind: req.kind,
    role: req.role,
    jobId: null,
    lineage: { jobId: null, source: 'manual', teacher: null, dataset: null, spec: null, versions: null, inputShape: null, floatLayers: [], importedFrom: req.file, classNames: null },
    metrics: { accuracy: req.centralAccuracy ?? null, teacherFp32: null, studentFp32: p.baseline?.metrics.accuracy ?? null, studentInt8: null, runtime: p.runtime },
    diagnostics: null,
    stagedDir: p.stagedDir,
    files: p.files,
    parent: p.baseline ? { existing: p.baseline } : null,
    parentIsBaseline: true,
    createdAt: p.createdAt,
  };
}

/** `<name>-<recipeId>` for QAT int8, `-ptq` for the PTQ comparison, `<name>-fp32`, `<name>-teacher-fp32`... */
export function modelIdFor(name: string, role: ModelArtifactKind, recipeId: string | null): string {
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
