/**
 * Rollout bench (not a test): what the rollout service costs per device report in a large rollout. The rollout
 * service over a real SQLite file with N devices of one profile, a rollout in two waves (a canary, then everyone),
 * the canary through, then `BENCH_REPORTS` devices of the second wave each report downloading, verifying and
 * benchmarking, 100 reports per 10 ms. Delivery is not in it (its port counts the deploys): this is the rollout
 * room's own work. Each measurement runs in a process of its own, alternating with BENCH_BEFORE's checkout.
 *
 *   node --import tsx bench/rollout-bench.ts
 *   BENCH_NS=1000,10000 BENCH_REPORTS=300 (devices reporting, 3 reports each) BENCH_REPEAT=2 BENCH_BEFORE=<checkout>
 *
 * Internal mode: --measure <root> <n>.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { alternate, checkouts } from './lib/alternate.ts';
import { machineName } from './lib/machine.ts';
import { formatTable } from './lib/table.ts';

type Result = { n: number; reports: number; cpuMs: number; wallMs: number; sends: number };

const NS = (process.env['BENCH_NS'] ?? '1000,10000').split(',').map(Number);
const REPORTS = Number(process.env['BENCH_REPORTS'] ?? '300');
const REPEAT = Number(process.env['BENCH_REPEAT'] ?? '2');
const BEFORE = process.env['BENCH_BEFORE'] ?? null;
const HERE = join(import.meta.dirname, '..');

async function measure(root: string, n: number): Promise<void> {
  const { openDatabase, migrateRoom } = await import(join(root, 'control-plane/store/db.ts'));
  const { DeviceStore } = await import(join(root, 'control-plane/store/devices.ts'));
  const { ROLLOUT_MIGRATIONS, RolloutStore } = await import(join(root, 'control-plane/rollouts/rollout-store.ts'));
  const { RolloutService } = await import(join(root, 'control-plane/rollouts/rollout-service.ts'));
  const { RolloutCreateSchema } = await import(join(root, 'shared/rollouts.ts'));
  const { silentLogger } = await import(join(root, 'control-plane/log.ts'));
  const dir = mkdtempSync(join(tmpdir(), 'ef-rollout-bench-'));
  const db = openDatabase(join(dir, 'cp.db'));
  migrateRoom(db, 'rollouts', ROLLOUT_MIGRATIONS);
  const devices = new DeviceStore(db);
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const id = `dev-${String(i).padStart(6, '0')}`;
      devices.createEnrolled(id, 'h', 't', 1);
      devices.update(id, { profileId: 'generic-cpu' });
    }
  })();
  const store = new RolloutStore(db);
  let sends = 0;
  const ports = { modelInfo: () => ({ profileId: 'generic-cpu', centralAccuracy: 0.9 }), modelKnown: () => true, deploy: async () => void sends++, rollback: async () => {}, p50On: () => null };
  const svc = new RolloutService(store, devices, ports, silentLogger, () => Date.now());
  const model = { modelId: 'cnn-generic-cpu', version: 1 };
  const r = svc.create(RolloutCreateSchema.parse({ models: [{ ...model, profileId: 'generic-cpu' }], waves: { canary: { count: 1 }, then: { percents: [100] } } }));
  const until = async (f: () => boolean): Promise<void> => {
    while (!f()) await new Promise((res) => setTimeout(res, 20));
  };
  await until(() => sends === 1);
  const canary = store.devices(r.id).find((d: { wave: number }) => d.wave === 0).deviceId as string;
  const p = 1;
  await svc.onInstallState(canary, model, 'active', null, r.id);
  await svc.onBenchmark(canary, model, { runtime: 'onnxruntime-cpu', threads: 1, sessionCreateMs: 1, latencyMs: { p50: p, p90: p, p99: p, mean: p, min: p, max: p, count: 1 }, throughputPerSecond: 1, throughputBatchSize: 1, peakRssBytes: 1, fileSizeBytes: 1, accuracy: 0.9, agreement: 1, integerKernelShare: null, topOps: [] }, null, r.id);
  await until(() => sends === n);
  const wave1 = store.devices(r.id).filter((d: { wave: number }) => d.wave === 1).map((d: { deviceId: string }) => d.deviceId as string).slice(0, REPORTS);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let k = 0;
  for (const state of ['downloading', 'verifying', 'benchmarking'] as const) {
    for (const d of wave1) {
      await svc.onInstallState(d, model, state, null, r.id);
      if (++k % 100 === 0) await new Promise((res) => setTimeout(res, 10));
    }
  }
  // what the reports asked for has run: the last one's evaluation included
  await until(() => store.devices(r.id).filter((d: { state: string }) => d.state === 'benchmarking').length === wave1.length);
  await new Promise((res) => setTimeout(res, 1000));
  const c = process.cpuUsage(c0);
  const out: Result = { n, reports: k, cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0 - 1000, sends };
  svc.stop();
  db.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify(out));
  process.exit(0);
}

async function main(): Promise<void> {
  const codes = checkouts(HERE, BEFORE);
  const load0 = loadavg();
  const rows: (string | number)[][] = [];
  for (const n of NS) {
    const by = await alternate<Result>(import.meta.filename, codes, REPEAT, [String(n)]);
    for (const [code] of codes) {
      const rs = by.get(code)!;
      rows.push([code, n.toLocaleString('en-US'), rs[0]!.reports, rs.map((r) => ((r.cpuMs * 1000) / r.reports).toFixed(0)).join(' / '), rs.map((r) => (r.cpuMs / 1000).toFixed(2)).join(' / ')]);
    }
  }
  console.log(`\nRollout service CPU per device report; ${machineName()}; Node ${process.version}; load average ${load0.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end; ${REPEAT} measurements per row, alternated${BEFORE ? ` (before: ${BEFORE})` : ''}\n`);
  console.log(formatTable(['code', 'devices in the rollout', 'reports', 'CPU µs per report (each run)', 'CPU s (each run)'], rows));
}

const [mode, a, b] = process.argv.slice(2);
if (mode === '--measure') await measure(a!, Number(b));
else await main();
