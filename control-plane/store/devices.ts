import type { DeviceFacts } from '../../shared/facts.ts';
import type { Heartbeat, ModelRef } from '../../shared/messages.ts';
import type { Statement } from 'better-sqlite3';
import { statementCache, type Db } from './db.ts';
import { DeviceCounts, type CountGroup, type Counted } from './device-counts.ts';

export type DeviceStatus = 'unknown' | 'online' | 'offline' | 'revoked';

export type DeviceRow = {
  id: string;
  createdAt: number;
  enrolledWith: string | null;
  revokedAt: number | null;
  status: DeviceStatus;
  statusTs: number;
  lastSeen: number | null;
  agentVersion: string | null;
  facts: DeviceFacts | null;
  profileId: string | null;
  profileReason: string | null;
  profileOverride: string | null;
  profileHint: string | null;
  labels: Record<string, string>;
  currentModel: ModelRef | null;
  heartbeat: Heartbeat | null;
  birthCount: number;
  lastBirthAt: number | null;
};

type RawRow = {
  id: string;
  created_at: number;
  enrolled_with: string | null;
  revoked_at: number | null;
  status: DeviceStatus;
  status_ts: number;
  last_seen: number | null;
  agent_version: string | null;
  facts_json: string | null;
  profile_id: string | null;
  profile_reason: string | null;
  profile_override: string | null;
  profile_hint: string | null;
  labels_json: string;
  current_model_json: string | null;
  heartbeat_json: string | null;
  birth_count: number;
  last_birth_at: number | null;
};

const json = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));

function toRow(r: RawRow): DeviceRow {
  return {
    id: r.id,
    createdAt: r.created_at,
    enrolledWith: r.enrolled_with,
    revokedAt: r.revoked_at,
    status: r.status,
    statusTs: r.status_ts,
    lastSeen: r.last_seen,
    agentVersion: r.agent_version,
    facts: json<DeviceFacts>(r.facts_json),
    profileId: r.profile_id,
    profileReason: r.profile_reason,
    profileOverride: r.profile_override,
    profileHint: r.profile_hint,
    labels: json<Record<string, string>>(r.labels_json) ?? {},
    currentModel: json<ModelRef>(r.current_model_json),
    heartbeat: json<Heartbeat>(r.heartbeat_json),
    birthCount: r.birth_count,
    lastBirthAt: r.last_birth_at,
  };
}

/** What an inbound MQTT message needs to know about its device: no JSON columns, no parsing. */
export type DevicePresence = { revokedAt: number | null; profileOverride: string | null };

/** Devices whose DevicePresence is kept in memory at most (a fleet past it reads the rest from SQLite). */
export const PRESENCE_CACHE_MAX = 50_000;

/** DeviceStore.staleOnline's statement (its plan is asserted by the tests): on the partial index devices_last_seen. */
export const STALE_ONLINE_SQL = `SELECT id FROM devices WHERE revoked_at IS NULL AND last_seen < ? AND +status = 'online'
  UNION ALL SELECT id FROM devices WHERE revoked_at IS NULL AND last_seen IS NULL AND +status = 'online'`;

/** One row of the fleet report's last-seen list. */
export type LastSeenRow = { id: string; status: DeviceStatus; profileId: string | null; lastSeen: number | null };

export type ProfileCounts = { profileId: string | null; devices: number; online: number; offline: number; lastSeen: number | null };

/** A presence change or heartbeat to apply in a batch (see PresenceWriter). */
export type BirthRecord = { agentVersion: string; facts: DeviceFacts; profileId: string | null; profileReason: string | null; profileHint: string | null; currentModel: ModelRef | null };

export type PresenceOp =
  | { kind: 'heartbeat'; deviceId: string; heartbeat: Heartbeat; at: number }
  | { kind: 'birth'; deviceId: string; birth: BirthRecord; at: number; written?: () => void }
  | {
      kind: 'status';
      deviceId: string;
      status: DeviceStatus;
      stamp: number | 'keep';
      reason: string;
      at: number;
      /** An `offline` from a connection never heard coming online is not written but returned as held (see applyBatch). */
      holdUnannounced?: boolean;
    };

export type PresenceChange = { deviceId: string; status: DeviceStatus; reason: string };

export type DeviceFilter = { profile?: string; status?: DeviceStatus; labels?: Record<string, string>; idContains?: string; limit: number; offset: number };

type CountedRaw = { status: DeviceStatus; profile_id: string | null; agent_version: string | null; revoked_at: number | null; last_seen: number | null };
const counted = (r: CountedRaw): Counted => ({ status: r.status, profileId: r.profile_id, agentVersion: r.agent_version, revoked: r.revoked_at !== null, lastSeen: r.last_seen });

/**
 * The devices table and its status history. Plain SQL; every write is one statement or one transaction.
 * Statements are prepared once and reused: preparing one per call was 19% of the control plane's CPU
 * with thousands of devices heartbeating.
 *
 * This store is the devices table's only writer, so it also keeps the fleet's counts (DeviceCounts):
 * each write moves them by the row's before and after, applied when its transaction commits (a rolled
 * back write moves nothing). They are seeded from SQL on first use and rebuilt only when they say so.
 */
export class DeviceStore {
  /** The prepared statement for `sql` (see statementCache). */
  private readonly q: (sql: string) => Statement;
  /** Transactions committed by applyBatch (an observable for tests and /metrics). */
  batchTransactions = 0;
  /** Times the counts were computed from SQL with a scan of the table (an observable for tests). */
  countScans = 0;
  private countsCache: DeviceCounts | null = null;
  /** Count moves of the transaction in progress, applied at its commit. */
  private pending: [Counted | null, Counted | null][] | null = null;
  private pendingFailed = false;
  /**
   * DevicePresence of devices read lately, for every inbound message (a SQLite read each was 4.4 % of the control
   * plane's busy time taking 5,000 devices back after a restart). Only this store writes the two columns: each
   * write forgets the device's entry once its transaction has ended, committed or not, so the next read is SQL's.
   */
  private readonly presenceCache = new Map<string, DevicePresence>();
  /** presence() calls answered by SQLite (an observable for tests). */
  presenceReads = 0;

  constructor(private readonly db: Db) {
    this.q = statementCache(db);
  }

  /** The fleet's counts, from memory; a scan of the table only on first use or when they went stale. */
  counts(): DeviceCounts {
    if (!this.countsCache || this.countsCache.stale) this.countsCache = this.countsFromSql();
    return this.countsCache;
  }

  /** The counts computed from the table itself (a full scan): how they are seeded, and what tests check them against. */
  countsFromSql(): DeviceCounts {
    this.countScans++;
    const groups = this.q(
      `SELECT status, profile_id AS profileId, agent_version AS agentVersion, revoked_at IS NOT NULL AS revoked, COUNT(*) AS n, MAX(last_seen) AS lastSeen
       FROM devices GROUP BY status, profile_id, agent_version, revoked_at IS NOT NULL`,
    ).all() as CountGroup[];
    return DeviceCounts.fromGroups(groups);
  }

  private countedRow(id: string): Counted | null {
    const r = this.q('SELECT status, profile_id, agent_version, revoked_at, last_seen FROM devices WHERE id = ?').get(id) as CountedRaw | undefined;
    return r ? counted(r) : null;
  }

  /** Records one row's move for the counts: now, or at the commit of the transaction in progress. */
  private track(before: Counted | null, after: Counted | null): void {
    if (this.pending) this.pending.push([before, after]);
    else this.countsCache?.apply(before, after);
  }

  /**
   * `fn` in a transaction whose count moves apply only if it commits. Inside another one it simply runs
   * (no savepoint per heartbeat in a batch); if it throws there and the outer one still commits, the
   * counts cannot know what was written, so they are rebuilt from SQL.
   */
  private inTransaction<T>(fn: () => T): T {
    if (this.pending) {
      try {
        return fn();
      } catch (e) {
        this.pendingFailed = true;
        throw e;
      }
    }
    this.pending = [];
    this.pendingFailed = false;
    try {
      const result = this.db.transaction(fn)();
      if (this.pendingFailed) this.countsCache = null;
      else for (const [before, after] of this.pending) this.countsCache?.apply(before, after);
      return result;
    } finally {
      this.pending = null;
    }
  }

  get(id: string): DeviceRow | null {
    const r = this.q('SELECT * FROM devices WHERE id = ?').get(id) as RawRow | undefined;
    return r ? toRow(r) : null;
  }

  presence(id: string): DevicePresence | null {
    const hit = this.presenceCache.get(id);
    if (hit) return hit;
    this.presenceReads++;
    const r = this.q('SELECT revoked_at, profile_override FROM devices WHERE id = ?').get(id) as { revoked_at: number | null; profile_override: string | null } | undefined;
    if (!r) return null; // unknown ids are not kept: the cache holds devices that exist
    const p: DevicePresence = Object.freeze({ revokedAt: r.revoked_at, profileOverride: r.profile_override });
    // never inside a transaction (this store's or a caller's): what it reads there may still roll back
    if (!this.db.inTransaction) {
      if (this.presenceCache.size >= PRESENCE_CACHE_MAX) this.presenceCache.delete(this.presenceCache.keys().next().value!);
      this.presenceCache.set(id, p);
    }
    return p;
  }

  /** Runs a write of revoked_at or profile_override; the device's cached presence is forgotten once it has ended. */
  private presenceWrite<T>(id: string, fn: () => T): T {
    try {
      return fn();
    } finally {
      this.presenceCache.delete(id);
    }
  }

  /** Returns the password hash of an enrolled, unrevoked device (broker authentication). */
  credentialHash(id: string): string | null {
    const r = this.q('SELECT password_hash FROM devices WHERE id = ? AND revoked_at IS NULL').get(id) as
      | { password_hash: string | null }
      | undefined;
    return r?.password_hash ?? null;
  }

  createEnrolled(id: string, passwordHash: string, tokenId: string, now: number): void {
    this.presenceWrite(id, () => this.inTransaction(() => {
      const before = this.countedRow(id);
      this.q(
        `INSERT INTO devices (id, created_at, enrolled_with, password_hash) VALUES (?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET password_hash = excluded.password_hash, enrolled_with = excluded.enrolled_with, revoked_at = NULL,
           status = CASE WHEN devices.status = 'revoked' THEN 'unknown' ELSE devices.status END`,
      ).run(id, now, tokenId, passwordHash);
      this.track(before, this.countedRow(id));
    }));
  }

  recordBirth(id: string, b: BirthRecord, now: number): void {
    this.inTransaction(() => {
      const before = this.countedRow(id);
      if (!before) return;
      this.q(
        `UPDATE devices SET agent_version = ?, facts_json = ?, profile_id = ?, profile_reason = ?, profile_hint = ?,
           current_model_json = ?, birth_count = birth_count + 1, last_birth_at = ?, last_seen = ? WHERE id = ?`,
      ).run(b.agentVersion, JSON.stringify(b.facts), b.profileId, b.profileReason, b.profileHint, b.currentModel ? JSON.stringify(b.currentModel) : null, now, now, id);
      this.track(before, { ...before, agentVersion: b.agentVersion, profileId: b.profileId, lastSeen: now });
    });
  }

  /** Records a heartbeat; a device it finds not online (and not revoked) is marked online, keeping its stamp. */
  recordHeartbeat(id: string, hb: Heartbeat, now: number): boolean {
    return this.inTransaction(() => {
      const before = this.countedRow(id);
      if (!before || before.revoked) return false;
      this.q('UPDATE devices SET heartbeat_json = ?, agent_version = ?, current_model_json = ?, last_seen = ? WHERE id = ?').run(
        JSON.stringify(hb),
        hb.agentVersion,
        hb.activeModel ? JSON.stringify(hb.activeModel) : null,
        now,
        id,
      );
      this.track(before, { ...before, agentVersion: hb.agentVersion, lastSeen: now });
      return before.status !== 'online' ? this.applyStatus(id, 'online', 'keep', 'heartbeat', now) : false;
    });
  }

  /**
   * Applies heartbeats and presence changes in arrival order inside ONE transaction: one commit
   * (one WAL sync) per batch instead of one per message. Returns the presence changes made, and the
   * `holdUnannounced` offlines it did not write because they come from a connection never heard
   * coming online (see unannouncedOffline).
   */
  applyBatch(ops: readonly PresenceOp[], inBatch?: (op: Extract<PresenceOp, { kind: 'heartbeat' }>) => void): { changed: PresenceChange[]; held: Extract<PresenceOp, { kind: 'status' }>[] } {
    const changed: PresenceChange[] = [];
    const held: Extract<PresenceOp, { kind: 'status' }>[] = [];
    this.inTransaction(() => {
      for (const op of ops) {
        if (op.kind === 'heartbeat') {
          if (this.recordHeartbeat(op.deviceId, op.heartbeat, op.at)) changed.push({ deviceId: op.deviceId, status: 'online', reason: 'heartbeat' });
          inBatch?.(op);
        } else if (op.kind === 'birth') {
          this.recordBirth(op.deviceId, op.birth, op.at);
          if (this.applyStatus(op.deviceId, 'online', 'keep', 'birth', op.at)) changed.push({ deviceId: op.deviceId, status: 'online', reason: 'birth' });
        } else if (op.holdUnannounced && this.unannouncedOffline(op.deviceId, op.status, op.stamp)) {
          held.push(op);
        } else if (this.applyStatus(op.deviceId, op.status, op.stamp, op.reason, op.at)) {
          changed.push({ deviceId: op.deviceId, status: op.status, reason: op.reason });
        }
      }
    });
    this.batchTransactions++;
    return { changed, held };
  }

  /**
   * An `offline` stamped newer than the `online` on record, for a device recorded online: it comes from a
   * connection that never said it was online (agents publish `online` first on every connection, and their
   * goodbye carries the connection's own stamp). That is the will of a reconnect that broke before its
   * CONNACK arrived, and the device's older connection is already gone: it says little about whether the
   * device is away, so the caller holds it a while instead of writing it (PresenceWriter).
   */
  private unannouncedOffline(id: string, status: DeviceStatus, stamp: number | 'keep'): boolean {
    if (status !== 'offline' || stamp === 'keep') return false;
    const cur = this.q('SELECT status, status_ts, revoked_at FROM devices WHERE id = ?').get(id) as { status: DeviceStatus; status_ts: number; revoked_at: number | null } | undefined;
    return cur !== undefined && cur.revoked_at === null && cur.status === 'online' && stamp > cur.status_ts;
  }

  /**
   * Applies a presence change unless a newer one is already recorded. Agents stamp a connection's
   * `online` and its will with the same time, so a will from an old connection that arrives after
   * the new connection's `online` is ignored. `keep` (birth, heartbeat, missed heartbeats) changes
   * the state without moving the stamp: device clocks and ours are never compared.
   */
  setStatus(id: string, status: DeviceStatus, statusTs: number | 'keep', reason: string, now: number): boolean {
    return this.inTransaction(() => this.applyStatus(id, status, statusTs, reason, now));
  }

  /** setStatus without its own transaction (callers hold one). */
  private applyStatus(id: string, status: DeviceStatus, statusTs: number | 'keep', reason: string, now: number): boolean {
    const cur = this.q('SELECT status, status_ts, revoked_at, profile_id, agent_version, last_seen FROM devices WHERE id = ?').get(id) as
      | (CountedRaw & { status_ts: number })
      | undefined;
    if (!cur || (cur.revoked_at !== null && status !== 'revoked')) return false;
    const ts = statusTs === 'keep' ? cur.status_ts : statusTs;
    if (ts < cur.status_ts) return false;
    if (cur.status === status) {
      if (ts !== cur.status_ts) this.q('UPDATE devices SET status_ts = ? WHERE id = ?').run(ts, id);
      return false;
    }
    this.q(`UPDATE devices SET status = ?, status_ts = ?, last_seen = CASE WHEN ? = 'online' THEN ? ELSE last_seen END WHERE id = ?`).run(status, ts, status, now, id);
    const before = counted(cur);
    this.track(before, { ...before, status, lastSeen: status === 'online' ? now : before.lastSeen });
    this.q('INSERT INTO device_status_history (device_id, status, reason, at) VALUES (?, ?, ?, ?)').run(id, status, reason, now);
    return true;
  }

  /** Devices recorded offline, with their newest history entry, since `since` (bench and restart checks). */
  offlineRecordsSince(since: number): { deviceId: string; reason: string; at: number }[] {
    return this.q(`SELECT device_id AS deviceId, reason, at FROM device_status_history WHERE status = 'offline' AND at >= ? ORDER BY id`).all(since) as {
      deviceId: string;
      reason: string;
      at: number;
    }[];
  }

  statusHistory(id: string, limit = 50): { status: string; reason: string; at: number }[] {
    return this.q('SELECT status, reason, at FROM device_status_history WHERE device_id = ? ORDER BY id DESC LIMIT ?')
      .all(id, limit) as { status: string; reason: string; at: number }[];
  }

  /**
   * Online devices not heard from since `before` (missed heartbeats). The sweep runs every few seconds: it reads the
   * last-seen index up to `before` (the few silent devices), not every online device (`+status` keeps the planner
   * off the status index, which would walk all of them). A revoked device is never online.
   */
  staleOnline(before: number): string[] {
    return this.q(STALE_ONLINE_SQL).pluck().all(before) as string[];
  }

  list(f: DeviceFilter): { items: DeviceRow[]; total: number } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.profile) {
      where.push('profile_id = ?');
      args.push(f.profile);
    }
    if (f.status) {
      where.push('status = ?');
      args.push(f.status);
    }
    for (const [k, v] of Object.entries(f.labels ?? {})) {
      where.push('json_extract(labels_json, ?) = ?');
      args.push(`$."${k.replace(/"/g, '')}"`, v);
    }
    if (f.idContains) {
      // LIKE is case-insensitive for ASCII (device ids are lower-case); % _ and \ in the text are matched as themselves
      where.push("id LIKE ? ESCAPE '\\'");
      args.push(`%${f.idContains.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    // without a label or id filter the total is in the counts: no COUNT(*) over the table per page
    const total = (f.labels && Object.keys(f.labels).length) || f.idContains
      ? (this.q(`SELECT COUNT(*) AS n FROM devices ${clause}`).get(...args) as { n: number }).n
      : this.counts().matching({ ...(f.profile ? { profile: f.profile } : {}), ...(f.status ? { status: f.status } : {}) });
    const rows = this.q(`SELECT * FROM devices ${clause} ORDER BY id LIMIT ? OFFSET ?`).all(...args, f.limit, f.offset) as RawRow[];
    return { items: rows.map(toRow), total };
  }

  all(): DeviceRow[] {
    return (this.q('SELECT * FROM devices ORDER BY id').all() as RawRow[]).map(toRow);
  }

  /** The devices of these profiles that are not revoked, in id order (a rollout's candidates): on the profile index. */
  ofProfiles(profileIds: readonly string[]): DeviceRow[] {
    const rows: RawRow[] = [];
    for (const p of new Set(profileIds)) for (const r of this.q('SELECT * FROM devices WHERE profile_id = ? AND revoked_at IS NULL ORDER BY id').all(p) as RawRow[]) rows.push(r);
    return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(toRow);
  }

  /** Whether a profile has an online device that is not revoked: the profile index up to its first online device. */
  hasOnline(profileId: string): boolean {
    return this.q(`SELECT 1 FROM devices WHERE profile_id = ? AND status = 'online' AND revoked_at IS NULL LIMIT 1`).get(profileId) !== undefined;
  }

  /** Up to `limit` online, not revoked devices of a profile, in id order (a tuning's canaries). */
  onlineOfProfile(profileId: string, limit: number): string[] {
    return this.q(`SELECT id FROM devices WHERE profile_id = ? AND status = 'online' AND revoked_at IS NULL ORDER BY id LIMIT ?`).pluck().all(profileId, limit) as string[];
  }

  update(id: string, patch: { labels?: Record<string, string>; profileOverride?: string | null; profileId?: string | null; profileReason?: string | null }): void {
    const sets: string[] = [];
    const args: unknown[] = [];
    if (patch.labels !== undefined) {
      sets.push('labels_json = ?');
      args.push(JSON.stringify(patch.labels));
    }
    if (patch.profileOverride !== undefined) {
      sets.push('profile_override = ?');
      args.push(patch.profileOverride);
    }
    if (patch.profileId !== undefined) {
      sets.push('profile_id = ?');
      args.push(patch.profileId);
    }
    if (patch.profileReason !== undefined) {
      sets.push('profile_reason = ?');
      args.push(patch.profileReason);
    }
    if (!sets.length) return;
    this.presenceWrite(id, () => this.inTransaction(() => {
      const before = this.countedRow(id);
      this.q(`UPDATE devices SET ${sets.join(', ')} WHERE id = ?`).run(...args, id);
      if (before && patch.profileId !== undefined) this.track(before, { ...before, profileId: patch.profileId });
    }));
  }

  /** Removes the credential; the row and its history stay for the record. */
  revoke(id: string, now: number): boolean {
    return this.presenceWrite(id, () => this.inTransaction(() => {
      const before = this.countedRow(id);
      const r = this.q(`UPDATE devices SET password_hash = NULL, revoked_at = ?, status = 'revoked', status_ts = ? WHERE id = ? AND revoked_at IS NULL`).run(now, now, id);
      if (r.changes) this.q('INSERT INTO device_status_history (device_id, status, reason, at) VALUES (?, ?, ?, ?)').run(id, 'revoked', 'operator', now);
      if (r.changes && before) this.track(before, { ...before, status: 'revoked', revoked: true });
      return r.changes > 0;
    }));
  }

  /** Devices per status, profile or agent version (from the counts: no scan). */
  countsBy(column: 'status' | 'profile_id' | 'agent_version'): { key: string | null; n: number }[] {
    const c = this.counts();
    if (column === 'status') return c.byStatus();
    if (column === 'agent_version') return c.byAgentVersion();
    return c.byProfile().map((p) => ({ key: p.profileId, n: p.devices }));
  }

  /** Per-profile device, online and offline counts and the newest last-seen (from the counts: no scan). */
  profileCounts(): ProfileCounts[] {
    return this.counts().byProfile();
  }

  /** Enrolled devices without a profile. */
  unassignedCount(): number {
    return this.counts().unassigned;
  }

  /** Unrevoked devices, longest silent first (never seen before all), one page of them. */
  lastSeenPage(limit: number, offset: number): { items: LastSeenRow[]; total: number } {
    const total = this.counts().unrevoked;
    const items = this.q(
      'SELECT id, status, profile_id AS profileId, last_seen AS lastSeen FROM devices WHERE revoked_at IS NULL ORDER BY last_seen, id LIMIT ? OFFSET ?',
    ).all(limit, offset) as LastSeenRow[];
    return { items, total };
  }
}
