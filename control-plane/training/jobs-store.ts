import type { JobError, JobLogEntry, JobProgress, TrainingJobCreate, TrainingJobState, TrainingJobView } from '../../shared/registry.ts';
import { TrainerWarningSchema, type TrainerWarning, type TrainingJobSpec } from '../../shared/training.ts';
import type { Db } from '../store/db.ts';

/** Room `training`: the persistent job queue. Append migrations, never edit a released one. */
export const TRAINING_MIGRATIONS: readonly string[] = [
  `CREATE TABLE training_jobs (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     name TEXT NOT NULL,
     state TEXT NOT NULL,
     request TEXT NOT NULL,
     spec TEXT NOT NULL,
     profile_map TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     started_at INTEGER,
     finished_at INTEGER,
     updated_at INTEGER NOT NULL,
     pid INTEGER,
     progress TEXT,
     metrics TEXT,
     result TEXT,
     log_tail TEXT NOT NULL DEFAULT '[]',
     error TEXT,
     models TEXT NOT NULL DEFAULT '[]'
   );
   CREATE INDEX training_jobs_state ON training_jobs (state, seq);`,
];

export type JobModelRef = { id: string; version: number; role: string };

export type TrainingJobRow = {
  id: string;
  name: string;
  state: TrainingJobState;
  request: TrainingJobCreate;
  spec: TrainingJobSpec;
  /** recipeId → the profile that asked for it (or whose recipe it is), null when none. */
  profileMap: Record<string, string | null>;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
  pid: number | null;
  progress: JobProgress | null;
  metrics: unknown;
  result: unknown;
  logTail: JobLogEntry[];
  error: JobError | null;
  models: JobModelRef[];
};

type Raw = {
  id: string;
  name: string;
  state: TrainingJobState;
  request: string;
  spec: string;
  profile_map: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
  pid: number | null;
  progress: string | null;
  metrics: string | null;
  result: string | null;
  log_tail: string;
  error: string | null;
  models: string;
};

const json = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));

const toRow = (r: Raw): TrainingJobRow => ({
  id: r.id,
  name: r.name,
  state: r.state,
  request: JSON.parse(r.request) as TrainingJobCreate,
  spec: JSON.parse(r.spec) as TrainingJobSpec,
  profileMap: JSON.parse(r.profile_map) as Record<string, string | null>,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  updatedAt: r.updated_at,
  pid: r.pid,
  progress: json<JobProgress>(r.progress),
  metrics: json<unknown>(r.metrics),
  result: json<unknown>(r.result),
  logTail: JSON.parse(r.log_tail) as JobLogEntry[],
  error: json<JobError>(r.error),
  models: JSON.parse(r.models) as JobModelRef[],
});

export function jobView(j: TrainingJobRow): TrainingJobView {
  return {
    id: j.id,
    name: j.name,
    state: j.state,
    profiles: [...new Set(Object.values(j.profileMap).filter((p): p is string => p !== null))],
    recipes: j.spec.recipes.map((r) => r.id),
    outputDir: j.spec.outputDir,
    createdAt: j.createdAt,
    startedAt: j.startedAt,
    finishedAt: j.finishedAt,
    trainerPid: j.pid,
    progress: j.progress,
    metrics: j.metrics ?? null,
    error: j.error,
    warnings: resultWarnings(j.result),
    logTail: j.logTail,
    models: j.models,
    request: j.request,
  };
}

/** The warnings of a stored trainer result; rows from before warnings existed have none. */
function resultWarnings(result: unknown): TrainerWarning[] {
  const w = (result as { warnings?: unknown } | null)?.warnings;
  if (!Array.isArray(w)) return [];
  return w.flatMap((x) => {
    const p = TrainerWarningSchema.safeParse(x);
    return p.success ? [p.data] : [];
  });
}

export type NewJob = { id: string; name: string; request: TrainingJobCreate; spec: TrainingJobSpec; profileMap: Record<string, string | null> };
export type Finish = { state: Extract<TrainingJobState, 'succeeded' | 'failed' | 'cancelled' | 'interrupted'>; error?: JobError; metrics?: unknown; result?: unknown; models?: JobModelRef[] };

/** Adapter over SQLite; every state change is a guarded UPDATE, so a job leaves a terminal state never. */
export class TrainingJobStore {
  constructor(private readonly db: Db) {}

  insert(j: NewJob, now: number): void {
    this.db
      .prepare('INSERT INTO training_jobs (id, name, state, request, spec, profile_map, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(j.id, j.name, 'queued', JSON.stringify(j.request), JSON.stringify(j.spec), JSON.stringify(j.profileMap), now, now);
  }

  get(id: string): TrainingJobRow | null {
    const r = this.db.prepare('SELECT * FROM training_jobs WHERE id = ?').get(id) as Raw | undefined;
    return r ? toRow(r) : null;
  }

  list(filter: { state?: TrainingJobState; limit: number; offset: number }): { items: TrainingJobRow[]; total: number } {
    const where = filter.state ? 'WHERE state = ?' : '';
    const args = filter.state ? [filter.state] : [];
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM training_jobs ${where}`).get(...args) as { n: number }).n;
    const rows = this.db.prepare(`SELECT * FROM training_jobs ${where} ORDER BY seq DESC LIMIT ? OFFSET ?`).all(...args, filter.limit, filter.offset) as Raw[];
    return { items: rows.map(toRow), total };
  }

  /** The oldest queued job, moved to running in the same transaction; null when none waits. */
  claimNext(now: number): TrainingJobRow | null {
    return this.db.transaction((): TrainingJobRow | null => {
      const r = this.db.prepare("SELECT id FROM training_jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").get() as { id: string } | undefined;
      if (!r) return null;
      this.db.prepare("UPDATE training_jobs SET state = 'running', started_at = ?, updated_at = ? WHERE id = ? AND state = 'queued'").run(now, now, r.id);
      return this.get(r.id);
    })();
  }

  setPid(id: string, pid: number | null, now: number): void {
    this.db.prepare("UPDATE training_jobs SET pid = ?, updated_at = ? WHERE id = ? AND state = 'running'").run(pid, now, id);
  }

  saveLive(id: string, progress: JobProgress | null, logTail: JobLogEntry[], now: number): void {
    this.db
      .prepare("UPDATE training_jobs SET progress = ?, log_tail = ?, updated_at = ? WHERE id = ? AND state = 'running'")
      .run(progress ? JSON.stringify(progress) : null, JSON.stringify(logTail), now, id);
  }

  /** Ends a queued or running job; false when it had already ended. */
  finish(id: string, f: Finish, now: number, logTail?: JobLogEntry[], progress?: JobProgress | null): boolean {
    const sets = ['state = @state', 'finished_at = @now', 'updated_at = @now', 'pid = NULL', 'error = @error'];
    const args: Record<string, unknown> = { id, state: f.state, now, error: f.error ? JSON.stringify(f.error) : null };
    if (f.metrics !== undefined) (sets.push('metrics = @metrics'), (args['metrics'] = JSON.stringify(f.metrics)));
    if (f.result !== undefined) (sets.push('result = @result'), (args['result'] = JSON.stringify(f.result)));
    if (f.models !== undefined) (sets.push('models = @models'), (args['models'] = JSON.stringify(f.models)));
    if (logTail !== undefined) (sets.push('log_tail = @logTail'), (args['logTail'] = JSON.stringify(logTail)));
    if (progress !== undefined) (sets.push('progress = @progress'), (args['progress'] = progress ? JSON.stringify(progress) : null));
    const r = this.db.prepare(`UPDATE training_jobs SET ${sets.join(', ')} WHERE id = @id AND state IN ('queued', 'running')`).run(args);
    return r.changes === 1;
  }

  /** After a restart: jobs left `running` by the previous process are `interrupted`, never silently lost. */
  interruptRunning(now: number, error: JobError): { id: string; pid: number | null }[] {
    return this.db.transaction(() => {
      const rows = this.db.prepare("SELECT id, pid FROM training_jobs WHERE state = 'running'").all() as { id: string; pid: number | null }[];
      for (const r of rows) this.finish(r.id, { state: 'interrupted', error }, now);
      return rows;
    })();
  }

  countQueued(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM training_jobs WHERE state = 'queued'").get() as { n: number }).n;
  }
}
