/** Schema of the `delivery` room (see store/db.ts migrateRoom): append, never edit a released entry. */
export const DELIVERY_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE delivery_transfers (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    mtime_ms REAL NOT NULL,
    chunk_size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    chunk_sha256_json TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (sha256, chunk_size)
  );
  CREATE INDEX delivery_transfers_path ON delivery_transfers (path);
  -- which device may pull which transfer (the model and its companions, from a deploy)
  CREATE TABLE delivery_offers (
    device_id TEXT NOT NULL,
    transfer_id TEXT NOT NULL REFERENCES delivery_transfers (id),
    delivery_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, transfer_id)
  );
  -- one row per device and model version: the latest state; history in delivery_install_events
  CREATE TABLE delivery_installs (
    device_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    delivery_id TEXT NOT NULL,
    rollout_id TEXT,
    transfer_id TEXT NOT NULL,
    state TEXT NOT NULL,
    progress REAL,
    reason TEXT,
    manifest_json TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, model_id, version)
  );
  CREATE TABLE delivery_install_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    rollout_id TEXT,
    state TEXT NOT NULL,
    progress REAL,
    reason TEXT,
    at INTEGER NOT NULL
  );
  CREATE INDEX delivery_install_events_device ON delivery_install_events (device_id, id);
  CREATE TABLE delivery_benchmarks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    rollout_id TEXT,
    result_json TEXT NOT NULL,
    baseline_json TEXT,
    speedup REAL,
    at INTEGER NOT NULL
  );
  CREATE INDEX delivery_benchmarks_device ON delivery_benchmarks (device_id, id);
  `,
  // fan-out: an offer is open until its install (or evaluation) is past downloading, or the manifest expires; a
  // transfer with no open offer has ended and its shared-topic grant is revoked. The model names the offer's delivery
  // for evaluations, which have no install row.
  `
  ALTER TABLE delivery_offers ADD COLUMN expires_at INTEGER;
  ALTER TABLE delivery_offers ADD COLUMN closed_at INTEGER;
  ALTER TABLE delivery_offers ADD COLUMN model_id TEXT;
  ALTER TABLE delivery_offers ADD COLUMN model_version INTEGER;
  CREATE INDEX delivery_offers_open ON delivery_offers (transfer_id) WHERE closed_at IS NULL;
  CREATE INDEX delivery_offers_delivery ON delivery_offers (device_id, delivery_id);
  `,
  // reads that scanned a table growing with every report ever: the model report's newest benchmark per device (the
  // model page polls it), the per-install caps checked at each report, the expired-offer sweep
  `
  CREATE INDEX delivery_benchmarks_model ON delivery_benchmarks (model_id, device_id, version, id);
  CREATE INDEX delivery_install_events_install ON delivery_install_events (device_id, model_id, version);
  CREATE INDEX delivery_offers_expiry ON delivery_offers (expires_at) WHERE closed_at IS NULL AND expires_at IS NOT NULL;
  `,
  // the numbers the model report shows, in columns (written with each report, filled here for the rows before): the
  // report read and parsed two JSON documents per device (10,000 devices, 170 ms per request of the model page's poll)
  `
  ALTER TABLE delivery_benchmarks ADD COLUMN runtime TEXT;
  ALTER TABLE delivery_benchmarks ADD COLUMN p50_ms REAL;
  ALTER TABLE delivery_benchmarks ADD COLUMN p90_ms REAL;
  ALTER TABLE delivery_benchmarks ADD COLUMN p99_ms REAL;
  ALTER TABLE delivery_benchmarks ADD COLUMN throughput REAL;
  ALTER TABLE delivery_benchmarks ADD COLUMN peak_rss_bytes REAL;
  ALTER TABLE delivery_benchmarks ADD COLUMN accuracy REAL;
  ALTER TABLE delivery_benchmarks ADD COLUMN agreement REAL;
  ALTER TABLE delivery_benchmarks ADD COLUMN integer_kernel_share REAL;
  ALTER TABLE delivery_benchmarks ADD COLUMN baseline_p50_ms REAL;
  ALTER TABLE delivery_benchmarks ADD COLUMN baseline_accuracy REAL;
  UPDATE delivery_benchmarks SET
    runtime = json_extract(result_json, '$.runtime'),
    p50_ms = json_extract(result_json, '$.latencyMs.p50'),
    p90_ms = json_extract(result_json, '$.latencyMs.p90'),
    p99_ms = json_extract(result_json, '$.latencyMs.p99'),
    throughput = json_extract(result_json, '$.throughputPerSecond'),
    peak_rss_bytes = json_extract(result_json, '$.peakRssBytes'),
    accuracy = json_extract(result_json, '$.accuracy'),
    agreement = json_extract(result_json, '$.agreement'),
    integer_kernel_share = json_extract(result_json, '$.integerKernelShare'),
    baseline_p50_ms = json_extract(baseline_json, '$.latencyMs.p50'),
    baseline_accuracy = json_extract(baseline_json, '$.accuracy');
  `,
];
