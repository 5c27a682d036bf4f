import type Database from 'better-sqlite3';
import type { BenchmarkResult, InstallState, ModelManifest } from '../../shared/messages.ts';
import { statementCache, type Db } from '../store/db.ts';

export type TransferRow = {
  id: string;
  path: string;
  sizeBytes: number;
  mtimeMs: number;
  chunkSize: number;
  sha256: string;
  chunkSha256: string[];
  createdAt: number;
};

/** What the control plane knows of one model version on one device; `sent` is the control plane's own state before the agent answers. */
export type InstallRow = {
  deviceId: string;
  modelId: string;
  version: number;
  deliveryId: string;
  rolloutId: string | null;
  transferId: string;
  state: InstallState | 'sent';
  progress: number | null;
  reason: string | null;
  createdAt: number;
  updatedAt: number;
};

export type InstallEvent = { modelId: string; version: number; rolloutId: string | null; state: string; progress: number | null; reason: string | null; at: number };

export type BenchmarkRow = {
  id: number;
  deviceId: string;
  modelId: string;
  version: number;
  rolloutId: string | null;
  result: BenchmarkResult;
  baseline: BenchmarkResult | null;
  /** Baseline p50 / model p50: above 1 the model is faster than its fp32 baseline. */
  speedup: number | null;
  at: number;
};

type TransferDbRow = { id: string; path: string; size_bytes: number; mtime_ms: number; chunk_size: number; sha256: string; chunk_sha256_json: string; created_at: number };

const toTransfer = (r: TransferDbRow): TransferRow => ({
  id: r.id,
  path: r.path,
  sizeBytes: r.size_bytes,
  mtimeMs: r.mtime_ms,
  chunkSize: r.chunk_size,
  sha256: r.sha256,
  chunkSha256: JSON.parse(r.chunk_sha256_json) as string[],
  createdAt: r.created_at,
});

/** SQLite adapter of the delivery room: transfers, offers, installs with their history, benchmark reports. */
const toInstallRow = (r: Record<string, unknown>): InstallRow => ({
  deviceId: r.device_id as string,
  modelId: r.model_id as string,
  version: r.version as number,
  deliveryId: r.delivery_id as string,
  rolloutId: r.rollout_id as string | null,
  transferId: r.transfer_id as string,
  state: r.state as InstallRow['state'],
  progress: r.progress as number | null,
  reason: r.reason as string | null,
  createdAt: r.created_at as number,
  updatedAt: r.updated_at as number,
});

export class DeliveryStore {
  /** The prepared statement for `sql` (see statementCache): preparing per call showed in the delivery profile. */
  private readonly q: (sql: string) => Database.Statement;

  constructor(private readonly db: Db) {
    this.q = statementCache(db);
  }

  transfer(id: string): TransferRow | null {
    const r = this.q('SELECT * FROM delivery_transfers WHERE id = ?').get(id) as TransferDbRow | undefined;
    return r ? toTransfer(r) : null;
  }

  transferByContent(sha256: string, chunkSize: number): TransferRow | null {
    const r = this.q('SELECT * FROM delivery_transfers WHERE sha256 = ? AND chunk_size = ?').get(sha256, chunkSize) as TransferDbRow | undefined;
    return r ? toTransfer(r) : null;
  }

  /** A transfer registered from this very file (same size and mtime), so it need not be hashed again. */
  transferByFile(path: string, sizeBytes: number, mtimeMs: number, chunkSize: number): TransferRow | null {
    const r = this.q('SELECT * FROM delivery_transfers WHERE path = ? AND size_bytes = ? AND mtime_ms = ? AND chunk_size = ?')
      .get(path, sizeBytes, mtimeMs, chunkSize) as TransferDbRow | undefined;
    return r ? toTransfer(r) : null;
  }

  /** Inserts, or points an existing transfer of the same content at the file it was registered from now. */
  upsertTransfer(t: TransferRow): TransferRow {
    this.q(
        `INSERT INTO delivery_transfers (id, path, size_bytes, mtime_ms, chunk_size, sha256, chunk_sha256_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET path = excluded.path, mtime_ms = excluded.mtime_ms`,
      )
      .run(t.id, t.path, t.sizeBytes, t.mtimeMs, t.chunkSize, t.sha256, JSON.stringify(t.chunkSha256), t.createdAt);
    return this.transfer(t.id)!;
  }

  /** Offers (or offers again) a transfer to a device: open until `closeOffers`, or until `expiresAt` (the manifest's expiry). */
  offer(deviceId: string, transferId: string, deliveryId: string, now: number, expiresAt: number | null = null, model: { modelId: string; version: number } | null = null): void {
    this.q(
      `INSERT INTO delivery_offers (device_id, transfer_id, delivery_id, created_at, expires_at, closed_at, model_id, model_version) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)
       ON CONFLICT DO UPDATE SET delivery_id = excluded.delivery_id, created_at = excluded.created_at, expires_at = excluded.expires_at, closed_at = NULL,
         model_id = excluded.model_id, model_version = excluded.model_version`,
    ).run(deviceId, transferId, deliveryId, now, expiresAt, model?.modelId ?? null, model?.version ?? null);
  }

  /** Closes the open offers of one model version to one device (an evaluation has no install row naming its delivery). */
  closeOffersOfModel(deviceId: string, modelId: string, version: number, now: number): string[] {
    const rows = this.q('UPDATE delivery_offers SET closed_at = ? WHERE device_id = ? AND model_id = ? AND model_version = ? AND closed_at IS NULL RETURNING transfer_id').all(
      now,
      deviceId,
      modelId,
      version,
    ) as { transfer_id: string }[];
    return rows.map((r) => r.transfer_id);
  }

  /** Closes the open offers of one delivery; returns the transfers they were for. */
  closeOffers(deviceId: string, deliveryId: string, now: number): string[] {
    const rows = this.q('UPDATE delivery_offers SET closed_at = ? WHERE device_id = ? AND delivery_id = ? AND closed_at IS NULL RETURNING transfer_id').all(now, deviceId, deliveryId) as { transfer_id: string }[];
    return rows.map((r) => r.transfer_id);
  }

  /** Closes offers whose manifest expired; returns the transfers they were for. */
  closeExpiredOffers(now: number): string[] {
    const rows = this.q('UPDATE delivery_offers SET closed_at = ? WHERE closed_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ? RETURNING transfer_id').all(now, now) as { transfer_id: string }[];
    return [...new Set(rows.map((r) => r.transfer_id))];
  }

  /** Devices with an open offer of a transfer (they may listen on its shared topic). */
  openOfferDevices(transferId: string): string[] {
    return (this.q('SELECT device_id FROM delivery_offers WHERE transfer_id = ? AND closed_at IS NULL').all(transferId) as { device_id: string }[]).map((r) => r.device_id);
  }

  /**
   * Whether any device still has an open offer of a transfer. Asked each time a device is done with one (its install
   * report), so it reads one entry of the open-offers index, never the rest of the wave: counting them was quadratic in
   * the wave's size.
   */
  hasOpenOffer(transferId: string): boolean {
    return this.q('SELECT 1 FROM delivery_offers WHERE transfer_id = ? AND closed_at IS NULL LIMIT 1').get(transferId) !== undefined;
  }

  /** Transfers with at least one open offer. */
  openTransfers(): string[] {
    return (this.q('SELECT DISTINCT transfer_id FROM delivery_offers WHERE closed_at IS NULL').all() as { transfer_id: string }[]).map((r) => r.transfer_id);
  }

  /** Whether the device may pull the transfer on its own topic (a closed offer still may: a verify re-fetch, a resume). */
  isOffered(deviceId: string, transferId: string): boolean {
    return this.offerState(deviceId, transferId) !== null;
  }

  /** `open`: the device may also listen on the transfer's shared topic; `closed`: its own topic only; null: never offered. */
  offerState(deviceId: string, transferId: string): 'open' | 'closed' | null {
    const r = this.q('SELECT closed_at FROM delivery_offers WHERE device_id = ? AND transfer_id = ?').get(deviceId, transferId) as { closed_at: number | null } | undefined;
    return r === undefined ? null : r.closed_at === null ? 'open' : 'closed';
  }

  createInstall(i: Omit<InstallRow, 'progress' | 'reason' | 'updatedAt' | 'state'>, manifest: ModelManifest): void {
    this.db.transaction(() => {
      this.q(
          `INSERT INTO delivery_installs (device_id, model_id, version, delivery_id, rollout_id, transfer_id, state, progress, reason, manifest_json, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, 'sent', NULL, NULL, ?, ?, ?)
           ON CONFLICT (device_id, model_id, version) DO UPDATE SET delivery_id = excluded.delivery_id, rollout_id = excluded.rollout_id, transfer_id = excluded.transfer_id,
             state = 'sent', progress = NULL, reason = NULL, manifest_json = excluded.manifest_json, updated_at = excluded.updated_at`,
        )
        .run(i.deviceId, i.modelId, i.version, i.deliveryId, i.rolloutId, i.transferId, JSON.stringify(manifest), i.createdAt, i.createdAt);
      this.addEvent(i.deviceId, { modelId: i.modelId, version: i.version, rolloutId: i.rolloutId, state: 'sent', progress: null, reason: null, at: i.createdAt });
    })();
  }

  /** History lines of one install (capped per install: see `recordState`). */
  eventCount(deviceId: string, modelId: string, version: number): number {
    return (this.q('SELECT COUNT(*) AS n FROM delivery_install_events WHERE device_id = ? AND model_id = ? AND version = ?').get(deviceId, modelId, version) as { n: number }).n;
  }

  benchmarkCount(deviceId: string, modelId: string, version: number): number {
    return (this.q('SELECT COUNT(*) AS n FROM delivery_benchmarks WHERE device_id = ? AND model_id = ? AND version = ?').get(deviceId, modelId, version) as { n: number }).n;
  }

  /**
   * Records a state the agent reported. Progress-only updates of `downloading` update the row but add no history line
   * unless the state changed; past `maxEvents` lines for one install the row still follows but history stops growing.
   */
  recordState(deviceId: string, e: InstallEvent, maxEvents = Infinity): { changed: boolean; capped: boolean } {
    return this.db.transaction(() => {
      const cur = this.q('SELECT state FROM delivery_installs WHERE device_id = ? AND model_id = ? AND version = ?').get(deviceId, e.modelId, e.version) as { state: string } | undefined;
      if (cur) {
        this.q('UPDATE delivery_installs SET state = ?, progress = ?, reason = ?, updated_at = ?, rollout_id = COALESCE(?, rollout_id) WHERE device_id = ? AND model_id = ? AND version = ?')
          .run(e.state, e.progress, e.reason, e.at, e.rolloutId, deviceId, e.modelId, e.version);
      }
      const changed = !cur || cur.state !== e.state;
      let capped = false;
      if (changed || e.state !== 'downloading') {
        capped = Number.isFinite(maxEvents) && this.eventCount(deviceId, e.modelId, e.version) >= maxEvents;
        if (!capped) this.addEvent(deviceId, e);
      }
      return { changed, capped };
    })();
  }

  private addEvent(deviceId: string, e: InstallEvent): void {
    this.q('INSERT INTO delivery_install_events (device_id, model_id, version, rollout_id, state, progress, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(deviceId, e.modelId, e.version, e.rolloutId, e.state, e.progress, e.reason, e.at);
  }

  installs(deviceId: string): InstallRow[] {
    const rows = this.q('SELECT * FROM delivery_installs WHERE device_id = ? ORDER BY created_at DESC, version DESC').all(deviceId) as Record<string, unknown>[];
    return rows.map(toInstallRow);
  }

  /** One install by its key (not a scan of the device's history: called for every report). */
  install(deviceId: string, modelId: string, version: number): InstallRow | null {
    const r = this.q('SELECT * FROM delivery_installs WHERE device_id = ? AND model_id = ? AND version = ?').get(deviceId, modelId, version) as Record<string, unknown> | undefined;
    return r ? toInstallRow(r) : null;
  }

  events(deviceId: string, limit = 200): InstallEvent[] {
    const rows = this.q('SELECT model_id, version, rollout_id, state, progress, reason, at FROM delivery_install_events WHERE device_id = ? ORDER BY id DESC LIMIT ?')
      .all(deviceId, limit) as { model_id: string; version: number; rollout_id: string | null; state: string; progress: number | null; reason: string | null; at: number }[];
    return rows.map((r) => ({ modelId: r.model_id, version: r.version, rolloutId: r.rollout_id, state: r.state, progress: r.progress, reason: r.reason, at: r.at }));
  }

  addBenchmark(b: Omit<BenchmarkRow, 'id'>): number {
    const r = this.q(
      `INSERT INTO delivery_benchmarks (device_id, model_id, version, rollout_id, result_json, baseline_json, speedup, at,
         runtime, p50_ms, p90_ms, p99_ms, throughput, peak_rss_bytes, accuracy, agreement, integer_kernel_share, baseline_p50_ms, baseline_accuracy)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      b.deviceId, b.modelId, b.version, b.rolloutId, JSON.stringify(b.result), b.baseline ? JSON.stringify(b.baseline) : null, b.speedup, b.at,
      b.result.runtime, b.result.latencyMs.p50, b.result.latencyMs.p90, b.result.latencyMs.p99, b.result.throughputPerSecond, b.result.peakRssBytes,
      b.result.accuracy, b.result.agreement, b.result.integerKernelShare, b.baseline?.latencyMs.p50 ?? null, b.baseline?.accuracy ?? null,
    );
    return Number(r.lastInsertRowid);
  }

  /**
   * The p50 a device measured last on one model version, or null if it never reported one: the latency gate's
   * baseline. One row on the index (model, device, version, id), however many reports the device has sent since
   * (it used to search the device's newest 100 reports, so an older baseline was missed and the gate skipped).
   */
  latestP50(deviceId: string, modelId: string, version: number): number | null {
    const r = this.q(`SELECT p50_ms FROM delivery_benchmarks WHERE model_id = ? AND device_id = ? AND version = ? ORDER BY id DESC LIMIT 1`)
      .pluck()
      .get(modelId, deviceId, version) as number | null | undefined;
    return typeof r === 'number' ? r : null;
  }

  benchmarks(deviceId: string, limit = 100): BenchmarkRow[] {
    const rows = this.q('SELECT * FROM delivery_benchmarks WHERE device_id = ? ORDER BY id DESC LIMIT ?').all(deviceId, limit) as Record<string, unknown>[];
    return rows.map((r) => ({
      id: r.id as number,
      deviceId: r.device_id as string,
      modelId: r.model_id as string,
      version: r.version as number,
      rolloutId: r.rollout_id as string | null,
      result: JSON.parse(r.result_json as string) as BenchmarkResult,
      baseline: r.baseline_json ? (JSON.parse(r.baseline_json as string) as BenchmarkResult) : null,
      speedup: r.speedup as number | null,
      at: r.at as number,
    }));
  }
}
