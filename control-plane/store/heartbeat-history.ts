import type { Heartbeat } from '../../shared/messages.ts';
import type { Db } from './db.ts';

/** Room `heartbeat-history`: its own migrations, so it never collides with the core schema's numbering. */
export const HEARTBEAT_HISTORY_MIGRATIONS: readonly string[] = [
  `CREATE TABLE device_heartbeat_history (
     device_id TEXT NOT NULL,
     slot INTEGER NOT NULL,
     at INTEGER NOT NULL,
     load1 REAL NOT NULL,
     cpu_percent REAL,
     mem_used_bytes INTEGER NOT NULL,
     mem_total_bytes INTEGER NOT NULL,
     temperature_c REAL,
     PRIMARY KEY (device_id, slot)
   ) WITHOUT ROWID;`,
];

export type HeartbeatPoint = { at: number; load1: number; cpuPercent: number | null; memUsedBytes: number; memTotalBytes: number; temperatureC: number | null };

export type HeartbeatHistoryOptions = {
  /** One point per device per bucket (the first heartbeat in it); default 60 s. */
  bucketMs?: number;
  /** Buckets kept per device: a ring, overwritten in place; default 120 (two hours at 60 s). */
  slots?: number;
  /** Pending points are written together at most this long after the first (default 1 s). */
  flushMs?: number;
};

type Row = [deviceId: string, slot: number, at: number, load1: number, cpuPercent: number | null, memUsed: number, memTotal: number, temperatureC: number | null];

/**
 * A bounded health history per device for the dashboard's load/memory/temperature charts: a ring of `slots` rows per
 * device (slot = time bucket mod slots), so storage never grows past devices x slots rows and a write is one upsert,
 * done at most once per bucket per device however often heartbeats come (the last written bucket is remembered per
 * device; that map holds one number per known device).
 */
export class HeartbeatHistory {
  readonly bucketMs: number;
  readonly slots: number;
  readonly flushMs: number;
  private readonly lastBucket = new Map<string, number>();
  private pending: Row[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly upsert;
  private readonly select;
  private readonly writeAll: (rows: Row[]) => void;

  constructor(
    private readonly db: Db,
    opts: HeartbeatHistoryOptions = {},
  ) {
    this.bucketMs = opts.bucketMs ?? 60_000;
    this.slots = opts.slots ?? 120;
    this.flushMs = opts.flushMs ?? 1000;
    this.upsert = db.prepare(
      `INSERT INTO device_heartbeat_history (device_id, slot, at, load1, cpu_percent, mem_used_bytes, mem_total_bytes, temperature_c)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(device_id, slot) DO UPDATE SET at = excluded.at, load1 = excluded.load1, cpu_percent = excluded.cpu_percent,
         mem_used_bytes = excluded.mem_used_bytes, mem_total_bytes = excluded.mem_total_bytes, temperature_c = excluded.temperature_c`,
    );
    this.select = db.prepare(
      `SELECT at, load1, cpu_percent AS cpuPercent, mem_used_bytes AS memUsedBytes, mem_total_bytes AS memTotalBytes, temperature_c AS temperatureC
       FROM device_heartbeat_history WHERE device_id = ? AND at > ? ORDER BY at`,
    );
    this.writeAll = db.transaction((rows: Row[]) => {
      for (const r of rows) this.upsert.run(...r);
    });
  }

  /**
   * True when the heartbeat became a point (the first of its bucket for this device). Points are written in one
   * transaction per flush (a commit per point cost ~0.6 ms here; batched, a few µs), at most `flushMs` later; at most
   * one pending point per device, so the queue is bounded by the fleet.
   */
  record(deviceId: string, hb: Heartbeat, now: number): boolean {
    const bucket = Math.floor(now / this.bucketMs);
    if (this.lastBucket.get(deviceId) === bucket) return false;
    this.lastBucket.set(deviceId, bucket);
    this.pending.push([deviceId, bucket % this.slots, now, hb.load1, hb.cpuPercent, hb.memUsedBytes, hb.memTotalBytes, hb.temperatureC]);
    this.timer ??= setTimeout(() => this.flush(), this.flushMs);
    this.timer.unref?.();
    return true;
  }

  /**
   * As record(), but the point is written at once: for a caller that already batches its writes in one transaction
   * (the presence writer: heartbeats, presence and these points share its per-tick transaction).
   */
  recordNow(deviceId: string, hb: Heartbeat, now: number): boolean {
    const bucket = Math.floor(now / this.bucketMs);
    if (this.lastBucket.get(deviceId) === bucket) return false;
    this.lastBucket.set(deviceId, bucket);
    this.upsert.run(deviceId, bucket % this.slots, now, hb.load1, hb.cpuPercent, hb.memUsedBytes, hb.memTotalBytes, hb.temperatureC);
    return true;
  }

  /** Writes the pending points now (reads and shutdown call it). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.pending.length) return;
    const rows = this.pending;
    this.pending = [];
    this.writeAll(rows);
  }

  /** The device's points inside the ring's window, oldest first (older rows in a reused slot are left out). */
  recent(deviceId: string, now: number): HeartbeatPoint[] {
    this.flush();
    return this.select.all(deviceId, now - this.slots * this.bucketMs) as HeartbeatPoint[];
  }

  /** A revoked or forgotten device: its points go, and so does its entry in the bucket map. */
  forget(deviceId: string): void {
    this.flush();
    this.lastBucket.delete(deviceId);
    this.db.prepare('DELETE FROM device_heartbeat_history WHERE device_id = ?').run(deviceId);
  }
}
