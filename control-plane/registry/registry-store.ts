import type { Companion, ModelKind, ModelLineage, ModelMetrics, ModelRole } from '../../shared/registry.ts';
import type { Db } from '../store/db.ts';

/** Room `registry`. Append migrations, never edit a released one. */
export const REGISTRY_MIGRATIONS: readonly string[] = [
  `CREATE TABLE model_versions (
     id TEXT NOT NULL,
     version INTEGER NOT NULL,
     name TEXT NOT NULL,
     profile_id TEXT,
     recipe_id TEXT,
     kind TEXT NOT NULL,
     role TEXT NOT NULL,
     file_path TEXT NOT NULL,
     sha256 TEXT NOT NULL,
     size INTEGER NOT NULL,
     job_id TEXT,
     lineage TEXT NOT NULL,
     metrics TEXT NOT NULL,
     diagnostics TEXT,
     companions TEXT NOT NULL,
     signature TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (id, version)
   );
   CREATE INDEX model_versions_profile ON model_versions (profile_id, kind);
   CREATE INDEX model_versions_job ON model_versions (job_id);`,
];

/** A stored version; paths are relative to the data folder so the folder can move. */
export type StoredModelVersion = {
  id: string;
  version: number;
  name: string;
  profileId: string | null;
  recipeId: string | null;
  kind: ModelKind;
  role: ModelRole;
  filePath: string;
  sha256: string;
  size: number;
  jobId: string | null;
  lineage: ModelLineage;
  metrics: ModelMetrics;
  diagnostics: unknown;
  companions: Companion[];
  signature: string;
  createdAt: number;
};

type Raw = {
  id: string;
  version: number;
  name: string;
  profile_id: string | null;
  recipe_id: string | null;
  kind: ModelKind;
  role: ModelRole;
  file_path: string;
  sha256: string;
  size: number;
  job_id: string | null;
  lineage: string;
  metrics: string;
  diagnostics: string | null;
  companions: string;
  signature: string;
  created_at: number;
};

const toStored = (r: Raw): StoredModelVersion => ({
  id: r.id,
  version: r.version,
  name: r.name,
  profileId: r.profile_id,
  recipeId: r.recipe_id,
  kind: r.kind,
  role: r.role,
  filePath: r.file_path,
  sha256: r.sha256,
  size: r.size,
  jobId: r.job_id,
  lineage: { classNames: null, ...(JSON.parse(r.lineage) as Partial<ModelLineage>) } as ModelLineage,
  metrics: JSON.parse(r.metrics) as ModelMetrics,
  diagnostics: r.diagnostics === null ? null : (JSON.parse(r.diagnostics) as unknown),
  companions: JSON.parse(r.companions) as Companion[],
  signature: r.signature,
  createdAt: r.created_at,
});

export type ModelFilter = { profile?: string; recipe?: string; kind?: ModelKind; role?: ModelRole; job?: string; name?: string; limit: number; offset: number };

export class RegistryStore {
  constructor(readonly db: Db) {}

  nextVersion(id: string): number {
    const r = this.db.prepare('SELECT MAX(version) AS v FROM model_versions WHERE id = ?').get(id) as { v: number | null };
    return (r.v ?? 0) + 1;
  }

  insert(m: StoredModelVersion): void {
    this.db
      .prepare(
        `INSERT INTO model_versions (id, version, name, profile_id, recipe_id, kind, role, file_path, sha256, size, job_id, lineage, metrics, diagnostics, companions, signature, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        m.id,
        m.version,
        m.name,
        m.profileId,
        m.recipeId,
        m.kind,
        m.role,
        m.filePath,
        m.sha256,
        m.size,
        m.jobId,
        JSON.stringify(m.lineage),
        JSON.stringify(m.metrics),
        m.diagnostics === null || m.diagnostics === undefined ? null : JSON.stringify(m.diagnostics),
        JSON.stringify(m.companions),
        m.signature,
        m.createdAt,
      );
  }

  get(id: string, version: number): StoredModelVersion | null {
    const r = this.db.prepare('SELECT * FROM model_versions WHERE id = ? AND version = ?').get(id, version) as Raw | undefined;
    return r ? toStored(r) : null;
  }

  latest(id: string): StoredModelVersion | null {
    const r = this.db.prepare('SELECT * FROM model_versions WHERE id = ? ORDER BY version DESC LIMIT 1').get(id) as Raw | undefined;
    return r ? toStored(r) : null;
  }

  versions(id: string): StoredModelVersion[] {
    return (this.db.prepare('SELECT * FROM model_versions WHERE id = ? ORDER BY version DESC').all(id) as Raw[]).map(toStored);
  }

  list(f: ModelFilter): { items: StoredModelVersion[]; total: number } {
    const conds: string[] = [];
    const args: unknown[] = [];
    const eq = (col: string, v: string | undefined): void => {
      if (v === undefined) return;
      conds.push(`${col} = ?`);
      args.push(v);
    };
    eq('profile_id', f.profile);
    eq('recipe_id', f.recipe);
    eq('kind', f.kind);
    eq('role', f.role);
    eq('job_id', f.job);
    eq('name', f.name);
    const where = conds.length ? `WHERE ${conds.join(' AND ')}` : '';
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM model_versions ${where}`).get(...args) as { n: number }).n;
    const rows = this.db.prepare(`SELECT * FROM model_versions ${where} ORDER BY rowid DESC LIMIT ? OFFSET ?`).all(...args, f.limit, f.offset) as Raw[];
    return { items: rows.map(toStored), total };
  }

  /** The newest deliverable int8 version for a profile: QAT students and hand-registered int8 files. */
  latestFor(profileId: string, name?: string): StoredModelVersion | null {
    const byName = name === undefined ? '' : 'AND name = ?';
    const r = this.db
      .prepare(`SELECT * FROM model_versions WHERE profile_id = ? AND kind = 'int8' AND role IN ('student-int8-qat', 'imported') ${byName} ORDER BY created_at DESC, rowid DESC LIMIT 1`)
      .get(...(name === undefined ? [profileId] : [profileId, name])) as Raw | undefined;
    return r ? toStored(r) : null;
  }
}
