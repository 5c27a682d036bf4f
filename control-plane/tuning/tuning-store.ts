import type { Statement } from 'better-sqlite3';
import type { BenchmarkResult } from '../../shared/messages.ts';
import type { ProfileDecision, TuningCreate, TuningState } from '../../shared/tuning.ts';
import { statementCache, WriteCounts, type Db } from '../store/db.ts';
import type { CandidateVerdict } from './decide.ts';

/** Room `tuning`. Append migrations, never edit a released one. */
export const TUNING_MIGRATIONS: readonly string[] = [
  `CREATE TABLE tunings (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     state TEXT NOT NULL,
     request TEXT NOT NULL,
     profiles TEXT NOT NULL,
     training_job_id TEXT,
     teacher_accuracy REAL,
     canaries TEXT NOT NULL DEFAULT '{}',
     decisions TEXT NOT NULL DEFAULT '[]',
     rollout_id TEXT,
     notes TEXT NOT NULL DEFAULT '[]',
     error TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     finished_at INTEGER
   );
   CREATE INDEX tunings_state ON tunings (state);
   CREATE TABLE tuning_candidates (
     tuning_id TEXT NOT NULL REFERENCES tunings(id),
     profile_id TEXT NOT NULL,
     key TEXT NOT NULL,
     model_id TEXT NOT NULL,
     version INTEGER NOT NULL,
     kind TEXT NOT NULL,
     recipe_id TEXT,
     configured INTEGER NOT NULL,
     pytorch_accuracy REAL,
     runtime_accuracy REAL,
     runtime_agreement REAL,
     verdict TEXT,
     PRIMARY KEY (tuning_id, profile_id, key)
   );
   CREATE TABLE tuning_evaluations (
     tuning_id TEXT NOT NULL REFERENCES tunings(id),
     profile_id TEXT NOT NULL,
     key TEXT NOT NULL,
     device_id TEXT NOT NULL,
     model_id TEXT NOT NULL,
     version INTEGER NOT NULL,
     state TEXT NOT NULL,
     result TEXT,
     reason TEXT,
     sent_at INTEGER,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (tuning_id, device_id, model_id, version)
   );
   CREATE INDEX tuning_evaluations_state ON tuning_evaluations (tuning_id, state);`,
];

/** TuningStore.resendAllSentTo's statement (its plan is asserted by the tests). */
export const RESEND_ON_BIRTH_SQL = `UPDATE tuning_evaluations SET state = 'pending', updated_at = ?
  WHERE tuning_id IN (SELECT id FROM tunings WHERE state = 'evaluating') AND device_id = ? AND +state = 'sent'`;

/** One line of GET /tunings. */
export type TuningSummaryRow = Pick<TuningRow, 'id' | 'name' | 'state' | 'profiles' | 'trainingJobId' | 'rolloutId' | 'createdAt' | 'updatedAt' | 'finishedAt'> & {
  objective: TuningCreate['objective'];
  evaluations: Record<EvaluationRowState, number>;
};

export type TuningRow = {
  id: string;
  name: string;
  state: TuningState;
  request: TuningCreate;
  profiles: string[];
  trainingJobId: string | null;
  teacherAccuracy: number | null;
  /** profile id → canary device ids, fixed when evaluation starts. */
  canaries: Record<string, string[]>;
  decisions: ProfileDecision[];
  rolloutId: string | null;
  notes: string[];
  error: { code: string; message: string } | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
};

export type CandidateRow = {
  tuningId: string;
  profileId: string;
  key: string;
  modelId: string;
  version: number;
  kind: 'int8' | 'fp32';
  recipeId: string | null;
  configured: boolean;
  pytorchAccuracy: number | null;
  runtimeAccuracy: number | null;
  runtimeAgreement: number | null;
  verdict: CandidateVerdict | null;
};

export type EvaluationRowState = 'pending' | 'sent' | 'done' | 'failed' | 'missing' | 'cancelled';
export type EvaluationRow = {
  tuningId: string;
  profileId: string;
  key: string;
  deviceId: string;
  modelId: string;
  version: number;
  state: EvaluationRowState;
  result: BenchmarkResult | null;
  reason: string | null;
  sentAt: number | null;
  updatedAt: number;
};

const json = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));

const toTuning = (r: Record<string, unknown>): TuningRow => ({
  id: r.id as string,
  name: r.name as string,
  state: r.state as TuningState,
  request: JSON.parse(r.request as string) as TuningCreate,
  profiles: JSON.parse(r.profiles as string) as string[],
  trainingJobId: r.training_job_id as string | null,
  teacherAccuracy: r.teacher_accuracy as number | null,
  canaries: JSON.parse(r.canaries as string) as Record<string, string[]>,
  decisions: JSON.parse(r.decisions as string) as ProfileDecision[],
  rolloutId: r.rollout_id as string | null,
  notes: JSON.parse(r.notes as string) as string[],
  error: json(r.error as string | null),
  createdAt: r.created_at as number,
  updatedAt: r.updated_at as number,
  finishedAt: r.finished_at as number | null,
});

const toCandidate = (r: Record<string, unknown>): CandidateRow => ({
  tuningId: r.tuning_id as string,
  profileId: r.profile_id as string,
  key: r.key as string,
  modelId: r.model_id as string,
  version: r.version as number,
  kind: r.kind as 'int8' | 'fp32',
  recipeId: r.recipe_id as string | null,
  configured: r.configured === 1,
  pytorchAccuracy: r.pytorch_accuracy as number | null,
  runtimeAccuracy: r.runtime_accuracy as number | null,
  runtimeAgreement: r.runtime_agreement as number | null,
  verdict: json(r.verdict as string | null),
});

const toEvaluation = (r: Record<string, unknown>): EvaluationRow => ({
  tuningId: r.tuning_id as string,
  profileId: r.profile_id as string,
  key: r.key as string,
  deviceId: r.device_id as string,
  modelId: r.model_id as string,
  version: r.version as number,
  state: r.state as EvaluationRowState,
  result: json(r.result as string | null),
  reason: r.reason as string | null,
  sentAt: r.sent_at as number | null,
  updatedAt: r.updated_at as number,
});

/** SQLite adapter of the tuning room. */
export class TuningStore {
  /** Prepared once per SQL text (see statementCache): births and ticks read these stores on every device reconnect. */
  private readonly q: (sql: string) => Statement;
  /** Writes to each tuning's rows (and one that may touch several: a device's reconnect), see `changeMark`. */
  private readonly writes = new WriteCounts();

  constructor(private readonly db: Db) {
    this.q = statementCache(db);
  }

  /** Moves whenever anything a tuning's view is built from may have changed: a view built at the same mark is current. */
  changeMark(tuningId: string): number {
    return this.writes.count(tuningId);
  }

  private wrote(tuningId: string): void {
    this.writes.touch(tuningId);
  }

  insert(t: { id: string; name: string; state: TuningState; request: TuningCreate; profiles: string[] }, now: number): void {
    this.db
      .prepare('INSERT INTO tunings (id, name, state, request, profiles, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(t.id, t.name, t.state, JSON.stringify(t.request), JSON.stringify(t.profiles), now, now);
    this.wrote(t.id);
  }

  get(id: string): TuningRow | null {
    const r = this.q('SELECT * FROM tunings WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r ? toTuning(r) : null;
  }

  /**
   * A page of the list (GET /tunings): only the columns a summary shows, and each tuning's evaluations counted per
   * state from the (tuning, state) index. The full rows carry the notes (up to 200 x 2,000 characters), decisions and
   * request JSON, and the full view every evaluation's result: none of it is read for a list.
   */
  summaries(f: { state?: TuningState; limit: number; offset: number }): { items: TuningSummaryRow[]; total: number } {
    const where = f.state ? 'WHERE state = ?' : '';
    const args = f.state ? [f.state] : [];
    const rows = this.q(
      `SELECT id, name, state, json_extract(request, '$.objective') AS objective, profiles, training_job_id, rollout_id, created_at, updated_at, finished_at
       FROM tunings ${where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
    ).all(...args, f.limit, f.offset) as Record<string, unknown>[];
    const count = this.q('SELECT state, COUNT(*) AS n FROM tuning_evaluations WHERE tuning_id = ? GROUP BY state');
    const items = rows.map((r) => {
      const evaluations: Record<EvaluationRowState, number> = { pending: 0, sent: 0, done: 0, failed: 0, missing: 0, cancelled: 0 };
      for (const c of count.all(r.id) as { state: EvaluationRowState; n: number }[]) if (c.state in evaluations) evaluations[c.state] = c.n;
      return {
        id: r.id as string,
        name: r.name as string,
        state: r.state as TuningState,
        objective: r.objective as TuningCreate['objective'],
        profiles: JSON.parse(r.profiles as string) as string[],
        trainingJobId: r.training_job_id as string | null,
        rolloutId: r.rollout_id as string | null,
        createdAt: r.created_at as number,
        updatedAt: r.updated_at as number,
        finishedAt: r.finished_at as number | null,
        evaluations,
      };
    });
    const total = (this.q(`SELECT COUNT(*) AS n FROM tunings ${where}`).get(...args) as { n: number }).n;
    return { items, total };
  }

  active(): TuningRow[] {
    return (this.q(`SELECT * FROM tunings WHERE state IN ('training', 'registering', 'evaluating') ORDER BY created_at`).all() as Record<string, unknown>[]).map(toTuning);
  }

  update(id: string, patch: Partial<Pick<TuningRow, 'state' | 'trainingJobId' | 'teacherAccuracy' | 'canaries' | 'decisions' | 'rolloutId' | 'notes' | 'error' | 'finishedAt'>>, now: number): void {
    const cols: Record<string, unknown> = {};
    if (patch.state !== undefined) cols.state = patch.state;
    if (patch.trainingJobId !== undefined) cols.training_job_id = patch.trainingJobId;
    if (patch.teacherAccuracy !== undefined) cols.teacher_accuracy = patch.teacherAccuracy;
    if (patch.canaries !== undefined) cols.canaries = JSON.stringify(patch.canaries);
    if (patch.decisions !== undefined) cols.decisions = JSON.stringify(patch.decisions);
    if (patch.rolloutId !== undefined) cols.rollout_id = patch.rolloutId;
    if (patch.notes !== undefined) cols.notes = JSON.stringify(patch.notes);
    if (patch.error !== undefined) cols.error = patch.error === null ? null : JSON.stringify(patch.error);
    if (patch.finishedAt !== undefined) cols.finished_at = patch.finishedAt;
    cols.updated_at = now;
    const keys = Object.keys(cols);
    this.q(`UPDATE tunings SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE id = ?`).run(...keys.map((k) => cols[k]), id);
    this.wrote(id);
  }

  addNote(id: string, note: string, now: number): void {
    const t = this.get(id);
    if (t && !t.notes.includes(note)) this.update(id, { notes: [...t.notes, note.slice(0, 2000)].slice(-200) }, now);
  }

  // ---------------------------------------------------------------- candidates

  addCandidates(rows: Omit<CandidateRow, 'verdict'>[]): void {
    const ins = this.q(
      `INSERT OR REPLACE INTO tuning_candidates (tuning_id, profile_id, key, model_id, version, kind, recipe_id, configured, pytorch_accuracy, runtime_accuracy, runtime_agreement, verdict)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
    );
    this.db.transaction(() => {
      for (const c of rows) ins.run(c.tuningId, c.profileId, c.key, c.modelId, c.version, c.kind, c.recipeId, c.configured ? 1 : 0, c.pytorchAccuracy, c.runtimeAccuracy, c.runtimeAgreement);
    })();
    for (const id of new Set(rows.map((c) => c.tuningId))) this.wrote(id);
  }

  candidates(tuningId: string): CandidateRow[] {
    return (this.q('SELECT * FROM tuning_candidates WHERE tuning_id = ? ORDER BY profile_id, key').all(tuningId) as Record<string, unknown>[]).map(toCandidate);
  }

  setVerdict(tuningId: string, profileId: string, key: string, v: CandidateVerdict): void {
    this.q('UPDATE tuning_candidates SET verdict = ? WHERE tuning_id = ? AND profile_id = ? AND key = ?').run(JSON.stringify(v), tuningId, profileId, key);
    this.wrote(tuningId);
  }

  // ---------------------------------------------------------------- evaluations

  addEvaluations(rows: Pick<EvaluationRow, 'tuningId' | 'profileId' | 'key' | 'deviceId' | 'modelId' | 'version'>[], now: number): void {
    const ins = this.q(
      `INSERT OR IGNORE INTO tuning_evaluations (tuning_id, profile_id, key, device_id, model_id, version, state, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)`,
    );
    this.db.transaction(() => {
      for (const e of rows) ins.run(e.tuningId, e.profileId, e.key, e.deviceId, e.modelId, e.version, now);
    })();
    for (const id of new Set(rows.map((e) => e.tuningId))) this.wrote(id);
  }

  evaluations(tuningId: string): EvaluationRow[] {
    return (this.q('SELECT * FROM tuning_evaluations WHERE tuning_id = ? ORDER BY device_id, profile_id, key').all(tuningId) as Record<string, unknown>[]).map(toEvaluation);
  }

  evaluation(tuningId: string, deviceId: string, modelId: string, version: number): EvaluationRow | null {
    const r = this.q('SELECT * FROM tuning_evaluations WHERE tuning_id = ? AND device_id = ? AND model_id = ? AND version = ?').get(tuningId, deviceId, modelId, version) as Record<string, unknown> | undefined;
    return r ? toEvaluation(r) : null;
  }

  /** Moves one evaluation on; `from` guards against a late or duplicate report overwriting a final state. */
  setEvaluation(e: Pick<EvaluationRow, 'tuningId' | 'deviceId' | 'modelId' | 'version'>, from: EvaluationRowState[], to: { state: EvaluationRowState; result?: BenchmarkResult | null; reason?: string | null; sentAt?: number }, now: number): boolean {
    const r = this.db
      .prepare(
        `UPDATE tuning_evaluations SET state = ?, result = COALESCE(?, result), reason = COALESCE(?, reason), sent_at = COALESCE(?, sent_at), updated_at = ?
         WHERE tuning_id = ? AND device_id = ? AND model_id = ? AND version = ? AND state IN (${from.map(() => '?').join(', ')})`,
      )
      .run(to.state, to.result ? JSON.stringify(to.result) : null, to.reason ?? null, to.sentAt ?? null, now, e.tuningId, e.deviceId, e.modelId, e.version, ...from);
    if (r.changes > 0) this.wrote(e.tuningId);
    return r.changes > 0;
  }

  /** A control-plane restart: evaluations it had sent are asked for again (the agent ignores a repeat it is still running). */
  resendSent(tuningId: string, now: number): number {
    const n = this.q(`UPDATE tuning_evaluations SET state = 'pending', updated_at = ? WHERE tuning_id = ? AND state = 'sent'`).run(now, tuningId).changes;
    if (n) this.wrote(tuningId);
    return n;
  }

  /** Evaluations sent and not yet answered, across tunings. */
  countSent(): number {
    return (this.q(`SELECT COUNT(*) AS n FROM tuning_evaluations WHERE state = 'sent'`).get() as { n: number }).n;
  }

  /**
   * A device's evaluations sent and not answered, in every evaluating tuning, back to pending (to be sent again): one
   * statement, on the primary key (tuning, device) once per evaluating tuning, no tuning row read or parsed. It runs on
   * every device (re)connect. `+state` keeps the planner off the (tuning, state) index, which would walk every sent
   * evaluation of the tuning to find this device's.
   */
  resendAllSentTo(deviceId: string, now: number): number {
    const n = this.q(RESEND_ON_BIRTH_SQL).run(now, deviceId).changes;
    if (n) this.writes.touchAll();
    return n;
  }

  cancelOpen(tuningId: string, now: number): void {
    this.q(`UPDATE tuning_evaluations SET state = 'cancelled', reason = 'tuning cancelled', updated_at = ? WHERE tuning_id = ? AND state IN ('pending', 'sent')`).run(now, tuningId);
    this.wrote(tuningId);
  }
}
