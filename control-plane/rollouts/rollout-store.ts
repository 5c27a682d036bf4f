import type { Statement } from 'better-sqlite3';
import type { ModelRef } from '../../shared/messages.ts';
import type { RolloutCreate } from '../../shared/rollouts.ts';
import { statementCache, WriteCounts, type Db } from '../store/db.ts';
import type { DeviceRolloutState, Rollout, RolloutDevice, RolloutState } from './state-machine.ts';

export const ROLLOUT_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE rollouts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    state TEXT NOT NULL,
    current_wave INTEGER NOT NULL,
    wave_sizes_json TEXT NOT NULL,
    abort_reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
  );
  CREATE TABLE rollout_devices (
    rollout_id TEXT NOT NULL REFERENCES rollouts (id),
    device_id TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    model_version INTEGER NOT NULL,
    previous_model_json TEXT,
    wave INTEGER NOT NULL,
    state TEXT NOT NULL,
    sent_at INTEGER,
    updated_at INTEGER NOT NULL,
    reason TEXT,
    p50_ms REAL,
    accuracy REAL,
    speedup REAL,
    installed INTEGER NOT NULL DEFAULT 0,
    measured INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rollout_id, device_id)
  );
  CREATE INDEX rollout_devices_device ON rollout_devices (device_id);
  CREATE TABLE rollout_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    device_id TEXT,
    detail TEXT
  );
  CREATE INDEX rollout_events_rollout ON rollout_events (rollout_id, id);
  `,
  // the devices of a rollout counted by state from the index alone (the /metrics gauge of open rollouts)
  `CREATE INDEX rollout_devices_state ON rollout_devices (rollout_id, state);`,
  // GET /rollouts/:id: its devices paged in wave order, and its waves counted from an index (no row read)
  `CREATE INDEX rollout_devices_wave ON rollout_devices (rollout_id, wave, device_id);
   CREATE INDEX rollout_devices_wave_state ON rollout_devices (rollout_id, wave, state, p50_ms);`,
];

/** GET /rollouts/:id's statements whose plans matter (the tests assert them): a page, and the counts per wave. */
export const ROLLOUT_VIEW_SQL = {
  devicePage: `SELECT * FROM rollout_devices WHERE rollout_id = @id AND (wave, device_id) > (@afterWave, @afterDevice)
    AND (@state IS NULL OR state = @state) AND (@wave IS NULL OR wave = @wave)
    ORDER BY wave, device_id LIMIT @limit`,
  waveCounts: 'SELECT wave, state, COUNT(*) AS n, COUNT(p50_ms) AS measured FROM rollout_devices WHERE rollout_id = ? GROUP BY wave, state',
} as const;

/** Where a page of a rollout's devices starts: after this wave and device id (the order is wave, then device id). */
export type DevicePageCursor = { wave: number; deviceId: string };
/** How many devices of a rollout are in one wave and state, and how many of those have a measured p50. */
export type WaveStateCount = { wave: number; state: DeviceRolloutState; n: number; measured: number };

export type RolloutRow = Rollout & { name: string; spec: RolloutCreate; createdAt: number; updatedAt: number; finishedAt: number | null };
export type RolloutDeviceRow = RolloutDevice & {
  modelId: string;
  modelVersion: number;
  previousModel: ModelRef | null;
  p50Ms: number | null;
  accuracy: number | null;
  speedup: number | null;
  /** The agent reported the model active. */
  installed: boolean;
  /** The agent's benchmark report arrived. */
  measured: boolean;
  updatedAt: number;
};

type RawRollout = { id: string; name: string; spec_json: string; state: RolloutState; current_wave: number; wave_sizes_json: string; abort_reason: string | null; created_at: number; updated_at: number; finished_at: number | null };
type RawDevice = {
  rollout_id: string;
  device_id: string;
  profile_id: string;
  model_id: string;
  model_version: number;
  previous_model_json: string | null;
  wave: number;
  state: DeviceRolloutState;
  sent_at: number | null;
  updated_at: number;
  reason: string | null;
  p50_ms: number | null;
  accuracy: number | null;
  speedup: number | null;
  installed: number;
  measured: number;
};

const toRollout = (r: RawRollout): RolloutRow => {
  const spec = JSON.parse(r.spec_json) as RolloutCreate;
  return {
    id: r.id,
    name: r.name,
    spec,
    state: r.state,
    currentWave: r.current_wave,
    waveSizes: JSON.parse(r.wave_sizes_json) as number[],
    gates: spec.gates,
    rollbackOnAbort: spec.rollbackOnAbort,
    abortReason: r.abort_reason,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
};

const toDevice = (r: RawDevice): RolloutDeviceRow => ({
  deviceId: r.device_id,
  profileId: r.profile_id,
  modelId: r.model_id,
  modelVersion: r.model_version,
  previousModel: r.previous_model_json ? (JSON.parse(r.previous_model_json) as ModelRef) : null,
  wave: r.wave,
  state: r.state,
  sentAt: r.sent_at,
  reason: r.reason,
  p50Ms: r.p50_ms,
  accuracy: r.accuracy,
  speedup: r.speedup,
  installed: r.installed === 1,
  measured: r.measured === 1,
  updatedAt: r.updated_at,
});

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Rollouts, their devices and an event log, in SQLite: a control-plane restart resumes from here. */
export class RolloutStore {
  /** Prepared once per SQL text (see statementCache): births and ticks read these stores on every device reconnect. */
  private readonly q: (sql: string) => Statement;

  /** What `takers()` returned last; dropped by every write to the rollouts table (create, state, wave). */
  private takersCache: readonly RolloutRow[] | null = null;
  /** Reads of the rollouts table by `takers()` (tests: a birth with nothing changed reads nothing). */
  takersReads = 0;

  /** Writes to each rollout or its device rows through this store (see `changeCount`). */
  private readonly changes = new WriteCounts();

  constructor(private readonly db: Db) {
    this.q = statementCache(db);
  }

  /**
   * How many times this store has written to the rollout or its device rows since it was created (create, a device
   * added, changed or taken over, a state, a wave; counted as the write is made, so one rolled back still counts). The
   * service's periodic tick evaluates a rollout again only when this moved, a device's timeout came due, or a while
   * passed (`RolloutService.tick`).
   */
  changeCount(rolloutId: string): number {
    return this.changes.count(rolloutId);
  }

  private touch(rolloutId: string): void {
    this.changes.touch(rolloutId);
  }

  /**
   * The rollouts a device coming online may join or resume (running, paused, succeeded), newest first. Every
   * reconnect is a birth, so this answers from memory until a rollout is created or changes state or wave; it
   * is not kept while a transaction is open (it could roll back). The rows are frozen: they are shared.
   */
  takers(): readonly RolloutRow[] {
    if (this.takersCache) return this.takersCache;
    this.takersReads++;
    const rows = (this.q(`SELECT * FROM rollouts WHERE state IN ('running', 'paused', 'succeeded') ORDER BY created_at DESC, rowid DESC`).all() as RawRollout[]).map((r) => deepFreeze(toRollout(r)));
    if (!this.db.inTransaction) this.takersCache = rows;
    return rows;
  }

  create(
    r: { id: string; name: string; spec: RolloutCreate; waveSizes: number[] },
    devices: { deviceId: string; profileId: string; modelId: string; modelVersion: number; previousModel: ModelRef | null; wave: number }[],
    now: number,
  ): { takenOver: number } {
    this.takersCache = null;
    this.touch(r.id);
    return this.db.transaction(() => {
      this.q('INSERT INTO rollouts (id, name, spec_json, state, current_wave, wave_sizes_json, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?)').run(r.id, r.name, JSON.stringify(r.spec), 'running', JSON.stringify(r.waveSizes), now, now);
      let taken = 0;
      for (const d of devices) {
        this.addDevice(r.id, d, now);
        taken += this.takeOver(r.id, d.deviceId, now).length;
      }
      this.event(r.id, 'created', null, `${devices.length} devices in ${r.waveSizes.length} waves${taken ? `; ${taken} taken over from older rollouts` : ''}`, now);
      return { takenOver: taken };
    })();
  }

  /**
   * A newer rollout takes a device over: every other running, paused or succeeded rollout in which the device has
   * not finished (pending or in flight) lets it go (its row removed, a `device-superseded` event in that rollout), so
   * it will not send the device its model later, wait for it, or count it in its gates. Finished rows (active, failed,
   * timed out, rolled back) stay: they are what happened. Returns what was taken, and from where.
   */
  takeOver(newRolloutId: string, deviceId: string, now: number): { rolloutId: string; state: DeviceRolloutState }[] {
    const rows = this.q(
      `SELECT d.rollout_id AS rolloutId, d.state AS state FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
       WHERE d.device_id = ? AND d.rollout_id != ? AND r.state IN ('running', 'paused', 'succeeded')
         AND d.state IN ('pending', 'sent', 'downloading', 'verifying', 'benchmarking')`,
    ).all(deviceId, newRolloutId) as { rolloutId: string; state: DeviceRolloutState }[];
    for (const t of rows) {
      this.touch(t.rolloutId);
      this.q('DELETE FROM rollout_devices WHERE rollout_id = ? AND device_id = ?').run(t.rolloutId, deviceId);
      this.event(t.rolloutId, 'device-superseded', deviceId, `taken over by rollout ${newRolloutId} while ${t.state}`, now);
    }
    return rows;
  }

  addDevice(rolloutId: string, d: { deviceId: string; profileId: string; modelId: string; modelVersion: number; previousModel: ModelRef | null; wave: number }, now: number): void {
    this.touch(rolloutId);
    this.q(
      `INSERT OR IGNORE INTO rollout_devices (rollout_id, device_id, profile_id, model_id, model_version, previous_model_json, wave, state, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)`,
    ).run(rolloutId, d.deviceId, d.profileId, d.modelId, d.modelVersion, d.previousModel ? JSON.stringify(d.previousModel) : null, d.wave, now);
  }

  get(id: string): RolloutRow | null {
    const r = this.q('SELECT * FROM rollouts WHERE id = ?').get(id) as RawRollout | undefined;
    return r ? toRollout(r) : null;
  }

  list(state?: RolloutState): RolloutRow[] {
    const rows = (state
      ? this.q('SELECT * FROM rollouts WHERE state = ? ORDER BY created_at DESC').all(state)
      : this.q('SELECT * FROM rollouts ORDER BY created_at DESC').all()) as RawRollout[];
    return rows.map(toRollout);
  }

  devices(rolloutId: string): RolloutDeviceRow[] {
    return (this.q('SELECT * FROM rollout_devices WHERE rollout_id = ? ORDER BY wave, device_id').all(rolloutId) as RawDevice[]).map(toDevice);
  }

  /**
   * One page of a rollout's devices in wave, then device id, order (an index: the page's cost does not grow with
   * the rollout), optionally of one state or wave; `next` is where the following page starts, null after the last.
   */
  devicePage(rolloutId: string, opts: { after?: DevicePageCursor | null; limit: number; state?: DeviceRolloutState | null; wave?: number | null }): { rows: RolloutDeviceRow[]; next: DevicePageCursor | null } {
    const after = opts.after ?? { wave: -1, deviceId: '' };
    const raw = this.q(ROLLOUT_VIEW_SQL.devicePage).all({ id: rolloutId, afterWave: after.wave, afterDevice: after.deviceId, state: opts.state ?? null, wave: opts.wave ?? null, limit: opts.limit + 1 }) as RawDevice[];
    const rows = raw.slice(0, opts.limit).map(toDevice);
    const last = rows[rows.length - 1];
    return { rows, next: raw.length > opts.limit && last ? { wave: last.wave, deviceId: last.deviceId } : null };
  }

  /** Per wave and state, how many devices and how many with a p50: from the covering index, no row read. */
  waveCounts(rolloutId: string): WaveStateCount[] {
    return this.q(ROLLOUT_VIEW_SQL.waveCounts).all(rolloutId) as WaveStateCount[];
  }

  /** The median p50 of a wave's measured devices, `measured` being how many have one (from waveCounts). */
  waveMedianP50(rolloutId: string, wave: number, measured: number): number | null {
    if (measured <= 0) return null;
    const xs = this.q('SELECT p50_ms FROM rollout_devices WHERE rollout_id = ? AND wave = ? AND p50_ms IS NOT NULL ORDER BY p50_ms LIMIT ? OFFSET ?')
      .pluck()
      .all(rolloutId, wave, measured % 2 ? 1 : 2, Math.floor((measured - 1) / 2)) as number[];
    return xs.length === 0 ? null : xs.length === 1 ? xs[0]! : (xs[0]! + xs[1]!) / 2;
  }

  /** How many devices a rollout has (the primary key's index, no row read). */
  deviceCount(rolloutId: string): number {
    return (this.q('SELECT COUNT(*) AS n FROM rollout_devices WHERE rollout_id = ?').get(rolloutId) as { n: number }).n;
  }

  /**
   * What `step()` needs of every device of a rollout, and nothing else (no JSON, no measurements): it runs for every
   * evaluation. Rows as arrays from SQLite (better-sqlite3 builds an object per row far slower), in device id order
   * (the primary key's), so a wave is sent in the same order as the full list gives.
   */
  stepDevices(rolloutId: string): RolloutDevice[] {
    const rows = this.q('SELECT device_id, profile_id, wave, state, sent_at, reason FROM rollout_devices WHERE rollout_id = ? ORDER BY device_id')
      .raw(true)
      .all(rolloutId) as [string, string, number, DeviceRolloutState, number | null, string | null][];
    return rows.map(([deviceId, profileId, wave, state, sentAt, reason]) => ({ deviceId, profileId, wave, state, sentAt, reason }));
  }

  device(rolloutId: string, deviceId: string): RolloutDeviceRow | null {
    const r = this.q('SELECT * FROM rollout_devices WHERE rollout_id = ? AND device_id = ?').get(rolloutId, deviceId) as RawDevice | undefined;
    return r ? toDevice(r) : null;
  }

  setState(id: string, state: RolloutState, now: number, abortReason?: string): void {
    const finished = state === 'succeeded' || state === 'aborted' || state === 'rolled-back';
    this.takersCache = null;
    this.touch(id);
    this.q('UPDATE rollouts SET state = ?, updated_at = ?, abort_reason = COALESCE(?, abort_reason), finished_at = CASE WHEN ? THEN COALESCE(finished_at, ?) ELSE finished_at END WHERE id = ?')
      .run(state, now, abortReason ?? null, finished ? 1 : 0, now, id);
  }

  setWave(id: string, wave: number, now: number): void {
    this.takersCache = null;
    this.touch(id);
    this.q('UPDATE rollouts SET current_wave = ?, updated_at = ? WHERE id = ?').run(wave, now, id);
  }

  updateDevice(
    rolloutId: string,
    deviceId: string,
    patch: { state?: DeviceRolloutState; sentAt?: number; reason?: string | null; p50Ms?: number; accuracy?: number | null; speedup?: number | null; installed?: boolean; measured?: boolean },
    now: number,
  ): void {
    const cur = this.device(rolloutId, deviceId);
    if (!cur) return;
    this.touch(rolloutId);
    this.q('UPDATE rollout_devices SET state = ?, sent_at = ?, reason = ?, p50_ms = ?, accuracy = ?, speedup = ?, installed = ?, measured = ?, updated_at = ? WHERE rollout_id = ? AND device_id = ?').run(
        patch.state ?? cur.state,
        patch.sentAt ?? cur.sentAt,
        patch.reason === undefined ? cur.reason : patch.reason,
        patch.p50Ms ?? cur.p50Ms,
        patch.accuracy === undefined ? cur.accuracy : patch.accuracy,
        patch.speedup === undefined ? cur.speedup : patch.speedup,
        (patch.installed ?? cur.installed) ? 1 : 0,
        (patch.measured ?? cur.measured) ? 1 : 0,
        now,
        rolloutId,
        deviceId,
      );
  }

  /** Rollouts a device takes part in whose model it may still be waiting for. */
  activeForDevice(deviceId: string): { rolloutId: string; modelId: string; modelVersion: number }[] {
    return this.q(
      `SELECT d.rollout_id AS rolloutId, d.model_id AS modelId, d.model_version AS modelVersion FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
       WHERE d.device_id = ? AND r.state IN ('running', 'paused', 'succeeded', 'aborted')`,
    ).all(deviceId) as { rolloutId: string; modelId: string; modelVersion: number }[];
  }

  event(rolloutId: string, kind: string, deviceId: string | null, detail: string | null, now: number): void {
    this.q('INSERT INTO rollout_events (rollout_id, at, kind, device_id, detail) VALUES (?, ?, ?, ?, ?)').run(rolloutId, now, kind, deviceId, detail);
  }

  events(rolloutId: string, limit = 200): { at: number; kind: string; deviceId: string | null; detail: string | null }[] {
    return this.q('SELECT at, kind, device_id AS deviceId, detail FROM rollout_events WHERE rollout_id = ? ORDER BY id DESC LIMIT ?').all(rolloutId, limit) as { at: number; kind: string; deviceId: string | null; detail: string | null }[];
  }
}
