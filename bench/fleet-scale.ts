/**
 * Fleet-scale bench (not a test: prints tables). One control plane process, N of the project's own agents
 * in a few worker processes (bench/lib/swarm-worker.ts, several agents per process), on the embedded broker
 * and on Mosquitto. Per run: time to all online (enroll + register), registrations/s, control-plane RSS and
 * CPU seconds, broker RSS, SQLite size, HTTP p50/p99 of `GET /devices?limit=100` and `GET /reports/fleet`
 * while every agent heartbeats, heartbeat ingest (accepted by /metrics vs sent by the agents), restart
 * recovery (control plane SIGTERM + start; time from the HTTP port answering to all online, offline records
 * written that were not earned, reconnect histogram), and offline detection after a mass kill (SIGKILL of
 * one worker process: its agents' wills).
 *
 *   nice -n 10 node --import tsx bench/fleet-scale.ts
 *   BENCH_NS=1000,5000,10000 BENCH_BROKERS=embedded,mosquitto BENCH_HB_S=10 BENCH_WINDOW_S=30
 *   BENCH_ONLINE_TIMEOUT_S=900 BENCH_PROFILE_DIR=/tmp/prof (node --cpu-prof on the control plane, before and after the restart)
 *   BENCH_CP_ROOT=/path/to/other/checkout (run that checkout's control plane: before/after comparisons)
 *   BENCH_CP_CPU_QUOTA=0.2 (the control plane gets at most this share of one core, in 30 ms periods, through a
 *     cgroup v1 `cpu` quota; needs root. A stand-in for a host shared with other work, reproducible and
 *     without loading anyone else: the same starvation for a before and an after run)
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { freePort, startMosquitto, type Mosquitto } from '../test/helpers/mosquitto.ts';
import { busySeconds, topFunctions } from './lib/cpu-profile-top.ts';
import { machineName } from './lib/machine.ts';
import { findPid, procCpuSeconds, procRss } from './lib/proc.ts';
import type { TraceEvent, TraceReply, WorkerReport } from './lib/swarm-worker.ts';
import { formatTable } from './lib/table.ts';

const NS = (process.env['BENCH_NS'] ?? '1000,5000,10000').split(',').map(Number);
const BROKERS = (process.env['BENCH_BROKERS'] ?? 'embedded,mosquitto').split(',') as ('embedded' | 'mosquitto')[];
const HB_S = Number(process.env['BENCH_HB_S'] ?? '10');
const WINDOW_S = Number(process.env['BENCH_WINDOW_S'] ?? '30');
const ONLINE_TIMEOUT_S = Number(process.env['BENCH_ONLINE_TIMEOUT_S'] ?? '900');
const RECOVERY_TIMEOUT_S = Number(process.env['BENCH_RECOVERY_TIMEOUT_S'] ?? '300');
const PER_WORKER = Number(process.env['BENCH_AGENTS_PER_PROCESS'] ?? '2500');
const PROFILE_DIR = process.env['BENCH_PROFILE_DIR'] ?? null;
const CP_ROOT = process.env['BENCH_CP_ROOT'] ?? join(import.meta.dirname, '..');
const CPU_QUOTA = process.env['BENCH_CP_CPU_QUOTA'] ? Number(process.env['BENCH_CP_CPU_QUOTA']) : null;
const TOKEN = 'bench-operator-token-0123456789';

/** Everything this bench started, killed if it dies half-way (no orphaned control planes or agents). */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(1));

/** The cgroup that holds the control plane under BENCH_CP_CPU_QUOTA, removed at exit. */
const QUOTA_GROUP = `/sys/fs/cgroup/cpu/edgefleet-bench-${process.pid}`;
function limitCpu(pid: number): void {
  if (CPU_QUOTA === null) return;
  if (!existsSync(QUOTA_GROUP)) {
    mkdirSync(QUOTA_GROUP);
    const periodUs = 30_000;
    writeFileSync(join(QUOTA_GROUP, 'cpu.cfs_period_us'), String(periodUs));
    writeFileSync(join(QUOTA_GROUP, 'cpu.cfs_quota_us'), String(Math.round(CPU_QUOTA * periodUs)));
    process.on('exit', () => {
      try {
        rmdirSync(QUOTA_GROUP);
      } catch {
        // still has a process: the kernel removes nothing; an empty group left behind is harmless
      }
    });
  }
  writeFileSync(join(QUOTA_GROUP, 'cgroup.procs'), String(pid));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (s: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

type Cp = { proc: ChildProcess; httpUrl: string; brokerUrl: string };

async function api(cp: Cp, path: string, init: RequestInit & { json?: unknown } = {}): Promise<{ status: number; body: any; text: string }> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${TOKEN}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const res = await fetch(cp.httpUrl + path, { ...init, headers, body: body ?? null, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // metrics are text
  }
  return { status: res.status, body: parsed, text };
}

async function startCp(dataDir: string, httpPort: number, broker: { kind: 'embedded'; port: number } | { kind: 'mosquitto'; m: Mosquitto }, profile: boolean): Promise<Cp> {
  const args = [...(profile && PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []), join(CP_ROOT, 'bin', 'edgefleet-control-plane.mjs')];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EDGEFLEET_DATA_DIR: dataDir,
    EDGEFLEET_HTTP_PORT: String(httpPort),
    EDGEFLEET_OPERATOR_TOKEN: TOKEN,
    EDGEFLEET_LOG_LEVEL: 'warn',
    EDGEFLEET_PRESENCE_TIMEOUT_S: '90',
  };
  if (broker.kind === 'embedded') {
    env['EDGEFLEET_BROKER'] = 'embedded';
    env['EDGEFLEET_MQTT_PORT'] = String(broker.port);
  } else {
    env['EDGEFLEET_BROKER'] = broker.m.url;
    env['EDGEFLEET_MQTT_USERNAME'] = broker.m.username;
    env['EDGEFLEET_MQTT_PASSWORD'] = broker.m.password;
  }
  const proc = spawn(process.execPath, args, { env, cwd: CP_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(proc);
  limitCpu(proc.pid!);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const cp: Cp = { proc, httpUrl: `http://127.0.0.1:${httpPort}`, brokerUrl: broker.kind === 'embedded' ? `mqtt://127.0.0.1:${broker.port}` : broker.m.url };
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`control plane exited: ${err}`);
    try {
      if ((await fetch(`${cp.httpUrl}/healthz`, { signal: AbortSignal.timeout(2000) })).ok) return cp;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`control plane did not answer: ${err}`);
    await sleep(100);
  }
}

async function stopCp(cp: Cp): Promise<void> {
  if (cp.proc.exitCode !== null) return;
  const exited = new Promise<void>((r) => cp.proc.once('exit', () => r()));
  cp.proc.kill('SIGTERM');
  await Promise.race([exited, sleep(60_000).then(() => cp.proc.kill('SIGKILL'))]);
  await exited;
}

type Worker = { proc: ChildProcess; count: number; last: WorkerReport | null; delays: number[]; reconnectAt: number[]; traceWaiters: ((r: TraceReply) => void)[] };

function startWorker(brokerUrl: string, token: string, stateRoot: string, from: number, count: number): Worker {
  const swarm = { brokerUrl, token, count, from, stateRoot, idPrefix: 'fs', heartbeatIntervalMs: HB_S * 1000, concurrency: 25 };
  const proc = fork(join(import.meta.dirname, 'lib', 'swarm-worker.ts'), [], {
    env: { ...process.env, SWARM: JSON.stringify(swarm) },
    execArgv: ['--import', 'tsx', '--max-old-space-size=4096'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  proc.stderr!.on('data', (d: Buffer) => log(`worker ${from}: ${d.toString().trim().slice(0, 300)}`));
  // the load generator yields to the system under test: on a shared 2-core host the agents would
  // otherwise take the CPU the control plane needs and the bench would measure the agents
  try {
    setPriority(proc.pid!, 19);
  } catch {
    // not allowed here: the numbers then include that competition
  }
  children.add(proc);
  const w: Worker = { proc, count, last: null, delays: [], reconnectAt: [], traceWaiters: [] };
  proc.on('message', (m) => {
    if (typeof m === 'object' && m !== null && 'traces' in m) return w.traceWaiters.shift()?.(m as TraceReply);
    const r = m as WorkerReport;
    w.last = r;
    w.delays.push(...r.reconnectDelays);
    w.reconnectAt.push(...r.reconnectAt);
  });
  return w;
}

/** The connection events of these devices' agents, from whichever worker runs them. */
async function traces(workers: Worker[], ids: string[]): Promise<Map<string, TraceEvent[]>> {
  const out = new Map<string, TraceEvent[]>();
  const live = workers.filter((w) => w.proc.connected);
  const replies = await Promise.all(
    live.map((w) => Promise.race([new Promise<TraceReply>((resolve) => (w.traceWaiters.push(resolve), w.proc.send({ trace: ids }))), sleep(10_000).then((): TraceReply => ({ traces: {} }))])),
  );
  for (const r of replies) for (const [id, t] of Object.entries(r.traces)) out.set(id, t);
  return out;
}

/**
 * Why a device was recorded offline at `at`, from its agent's own events around that time: the will of
 * an attempt whose CONNACK came too late, of a connection that dropped after it was up, or neither.
 */
function explainOffline(at: number, trace: TraceEvent[] | undefined): string {
  if (!trace) return 'no trace';
  const near = trace.filter((e) => e.t >= at - 10_000 && e.t <= at + 2_000);
  const failed = near.filter((e) => e.ev === 'connect-failed');
  if (failed.some((e) => e.detail.startsWith('connack timeout'))) return 'will of an attempt whose CONNACK timed out';
  if (failed.length) return `will of an attempt closed before CONNACK (${failed[failed.length - 1]!.detail.split(' after')[0]})`;
  if (near.some((e) => e.ev === 'disconnected')) return 'connection dropped after it was up';
  return 'no agent event within 10 s before';
}

/** Held wills by outcome (held, written, dropped), from /metrics (zero for a control plane without the hold). */
const heldWills = async (cp: Cp): Promise<Record<string, number>> => {
  const text = (await api(cp, '/metrics')).text;
  const out: Record<string, number> = { held: 0, written: 0, dropped: 0 };
  for (const m of text.matchAll(/^edgefleet_presence_held_wills_total\{outcome="(\w+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
};

const onlineCount = async (cp: Cp): Promise<number> => (await api(cp, '/devices?status=online&limit=1')).body.total as number;
const acceptedHeartbeats = async (cp: Cp): Promise<number> => {
  const m = /^edgefleet_mqtt_messages_accepted_total\{channel="heartbeat"\} (\d+)/m.exec((await api(cp, '/metrics')).text);
  return Number(m?.[1] ?? 0);
};
const sqliteBytes = (dataDir: string): number =>
  ['edgefleet.db', 'edgefleet.db-wal'].reduce((n, f) => n + (existsSync(join(dataDir, f)) ? statSync(join(dataDir, f)).size : 0), 0);

type Row = Record<string, string | number>;

async function run(kind: 'embedded' | 'mosquitto', n: number): Promise<Row> {
  const row: Row = { broker: kind, N: n, 'load avg': readFileSync('/proc/loadavg', 'utf8').split(' ')[0]! };
  const work = mkdtempSync(join(tmpdir(), `ef-fleet-scale-${kind}-${n}-`));
  const dataDir = join(work, 'cp');
  const mosq = kind === 'mosquitto' ? await startMosquitto() : null;
  const httpPort = await freePort();
  const broker = mosq ? ({ kind: 'mosquitto', m: mosq } as const) : ({ kind: 'embedded', port: await freePort() } as const);
  let cp = await startCp(dataDir, httpPort, broker, true);
  const cpPid = (): number => cp.proc.pid!;
  const mosqPid = mosq ? findPid(mosq.dir) : null;
  const workers: Worker[] = [];
  try {
    const token = (await api(cp, '/enrollment-tokens', { method: 'POST', json: { label: 'bench', maxUses: n, expiresInSeconds: 24 * 3600 } })).body.token as string;
    const nWorkers = Math.max(2, Math.ceil(n / PER_WORKER));
    const t0 = Date.now();
    for (let i = 0, from = 0; i < nWorkers; i++) {
      const count = Math.floor(n / nWorkers) + (i < n % nWorkers ? 1 : 0);
      workers.push(startWorker(cp.brokerUrl, token, join(work, 'agents'), from, count));
      from += count;
    }
    let online = 0;
    for (;;) {
      online = await onlineCount(cp).catch(() => online);
      if (online >= n || Date.now() - t0 > ONLINE_TIMEOUT_S * 1000) break;
      await sleep(1000);
    }
    const onlineS = (Date.now() - t0) / 1000;
    row['online'] = online >= n ? `${onlineS.toFixed(0)} s` : `${online} after ${onlineS.toFixed(0)} s`;
    row['reg/s'] = (online / onlineS).toFixed(0);
    log(`${kind} N=${n}: ${online} online after ${onlineS.toFixed(0)} s`);
    await sleep(Math.min(HB_S, 10) * 1000); // every agent through its first heartbeat period

    // steady state: all heartbeating, HTTP under load
    const hb0 = await acceptedHeartbeats(cp);
    const sent0 = workers.reduce((s, w) => s + (w.last?.heartbeatsSent ?? 0), 0);
    const w0 = Date.now();
    // healthz does no work: its latency is the event loop's and the host's, the floor under the other two
    const lat: Record<string, number[]> = { devices: [], report: [], healthz: [] };
    while (Date.now() - w0 < WINDOW_S * 1000) {
      for (const [k, path] of [['devices', '/devices?limit=100'], ['report', '/reports/fleet'], ['healthz', '/healthz']] as const) {
        const t = performance.now();
        const r = await api(cp, path);
        if (r.status !== 200) throw new Error(`${path}: ${r.status}`);
        lat[k]!.push(performance.now() - t);
      }
      await sleep(50);
    }
    await sleep(1500); // the workers' next report covers the window
    const windowS = (Date.now() - w0) / 1000;
    const accepted = (await acceptedHeartbeats(cp)) - hb0;
    const sent = workers.reduce((s, w) => s + (w.last?.heartbeatsSent ?? 0), 0) - sent0;
    row['hb sent/s'] = (sent / windowS).toFixed(0);
    row['hb accepted/s'] = (accepted / windowS).toFixed(0);
    row['devices p50/p99'] = `${pct(lat['devices']!, 50).toFixed(0)}/${pct(lat['devices']!, 99).toFixed(0)} ms`;
    row['report p50/p99'] = `${pct(lat['report']!, 50).toFixed(0)}/${pct(lat['report']!, 99).toFixed(0)} ms`;
    row['healthz p50/p99'] = `${pct(lat['healthz']!, 50).toFixed(0)}/${pct(lat['healthz']!, 99).toFixed(0)} ms`;
    row['HTTP samples'] = lat['report']!.length;
    row['cp RSS'] = mib(procRss(cpPid()));
    row['cp CPU s'] = procCpuSeconds(cpPid()).toFixed(0);
    row['broker RSS'] = mosqPid ? mib(procRss(mosqPid)) : '(in cp)';
    row['SQLite'] = mib(sqliteBytes(dataDir));
    row['load avg'] = `${row['load avg']}-${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`;
    log(`${kind} N=${n}: steady state measured`);

    // restart: SIGTERM, start again on the same ports and data
    const failedBefore: Record<string, number> = {};
    for (const w of workers) for (const [k, v] of Object.entries(w.last?.connectFailed ?? {})) failedBefore[k] = (failedBefore[k] ?? 0) + v;
    const restartAt = Date.now();
    for (const w of workers) w.reconnectAt.length = 0;
    await stopCp(cp);
    row['restart: stop s'] = ((Date.now() - restartAt) / 1000).toFixed(1);
    const startAt = Date.now();
    cp = await startCp(dataDir, httpPort, broker, true); // profiled too (BENCH_PROFILE_DIR): the reconnect wave is its first seconds
    row['restart: start s'] = ((Date.now() - startAt) / 1000).toFixed(1);
    const httpUp = Date.now();
    let lowest = n;
    let recovered = false;
    while (Date.now() - httpUp < RECOVERY_TIMEOUT_S * 1000) {
      const o = await onlineCount(cp).catch(() => 0);
      lowest = Math.min(lowest, o);
      const agentsUp = workers.reduce((s, w) => s + (w.last?.ready ?? 0), 0);
      if (o >= n && (kind === 'mosquitto' || agentsUp >= n)) {
        recovered = true;
        break;
      }
      await sleep(500);
    }
    const recoveryS = (Date.now() - httpUp) / 1000;
    row['restart: all online'] = recovered ? `${recoveryS.toFixed(1)} s` : `not in ${RECOVERY_TIMEOUT_S} s`;
    row['restart: lowest online'] = lowest;
    // wills held by the control plane are written or dropped within its hold: count offline records after that
    const holdDeadline = Date.now() + 120_000;
    let held = await heldWills(cp);
    while (held['held']! > held['written']! + held['dropped']! && Date.now() < holdDeadline) {
      await sleep(1000);
      held = await heldWills(cp);
    }
    row['restart: wills held/written/dropped'] = `${held['held']}/${held['written']}/${held['dropped']}`;
    const failedBy = (ws: Worker[]): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const w of ws) for (const [k, v] of Object.entries(w.last?.connectFailed ?? {})) out[k] = (out[k] ?? 0) + v;
      return out;
    };
    const failedNow = failedBy(workers);
    row['restart: failed attempts'] = Object.entries(failedNow).map(([k, v]) => `${k}:${v - (failedBefore[k] ?? 0)}`).join(' ') || '0';
    const db = new Database(join(dataDir, 'edgefleet.db'), { readonly: true, fileMustExist: true });
    const unearned = db.prepare(`SELECT device_id AS deviceId, reason, at FROM device_status_history WHERE status = 'offline' AND at >= ? ORDER BY id`).all(restartAt) as { deviceId: string; reason: string; at: number }[];
    row['restart: offline records'] = unearned.length;
    if (unearned.length) {
      const t = await traces(workers, [...new Set(unearned.map((r) => r.deviceId))]);
      const why = new Map<string, number>();
      for (const r of unearned) {
        const k = `${r.reason}: ${explainOffline(r.at, t.get(r.deviceId))}`;
        why.set(k, (why.get(k) ?? 0) + 1);
      }
      row['restart: offline why'] = [...why].map(([k, n]) => `${k} ${n}`).join('; ');
      for (const r of unearned.slice(0, 3)) {
        const events = (t.get(r.deviceId) ?? []).filter((e) => e.t >= restartAt - 1000);
        log(`offline record ${r.deviceId} at +${((r.at - httpUp) / 1000).toFixed(1)} s (${r.reason}); its agent since the restart: ${events.map((e) => `+${((e.t - httpUp) / 1000).toFixed(1)} s ${e.ev} ${e.detail}`).join(' | ')}`);
      }
    }
    const hist = new Map<number, number>();
    for (const t of workers.flatMap((w) => w.reconnectAt)) {
      const b = Math.floor((t - httpUp) / 5000) * 5;
      hist.set(b, (hist.get(b) ?? 0) + 1);
    }
    row['reconnects by 5 s after HTTP up'] = kind === 'embedded' ? [...hist].sort((a, b) => a[0] - b[0]).map(([b, c]) => `${b}s:${c}`).join(' ') : 'none (broker kept them)';
    log(`${kind} N=${n}: restart measured`);

    // mass kill: SIGKILL one worker process, its agents' wills mark them offline
    const victim = workers[0]!;
    // those of its agents that are connected (a run that did not get everyone online kills fewer)
    const killed = victim.last?.ready ?? victim.count;
    const before = await onlineCount(cp);
    const k0 = Date.now();
    victim.proc.kill('SIGKILL');
    let detected = false;
    while (Date.now() - k0 < 300_000) {
      if ((await onlineCount(cp).catch(() => before)) <= before - killed) {
        detected = true;
        break;
      }
      await sleep(200);
    }
    row['mass kill'] = `${killed} in ${detected ? `${((Date.now() - k0) / 1000).toFixed(1)} s` : '>300 s'}`;
    const reasons = db.prepare(`SELECT reason, COUNT(*) AS n FROM device_status_history WHERE status = 'offline' AND at >= ? GROUP BY reason`).all(k0) as { reason: string; n: number }[];
    row['kill reasons'] = reasons.map((r) => `${r.reason}:${r.n}`).join(' ');
    db.close();
    return row;
  } finally {
    const alive = workers.filter((w) => w.proc.exitCode === null && w.proc.signalCode === null);
    for (const w of alive) if (w.proc.connected) w.proc.send('stop');
    await Promise.race([Promise.all(alive.map((w) => new Promise((r) => w.proc.once('exit', r)))), sleep(60_000)]);
    for (const w of alive) if (w.proc.exitCode === null) w.proc.kill('SIGKILL');
    await stopCp(cp);
    await mosq?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
for (const n of NS) {
  for (const kind of BROKERS) {
    try {
      rows.push(await run(kind, n));
      log(JSON.stringify(rows[rows.length - 1]));
    } catch (e) {
      log(`${kind} N=${n} failed: ${String(e)}`);
      rows.push({ broker: kind, N: n, online: `failed: ${String(e).slice(0, 80)}` });
    }
  }
}
console.log(
  `\nFleet scale: one control plane${CPU_QUOTA === null ? '' : ` limited to ${CPU_QUOTA} of one core (cgroup cpu quota, 30 ms periods)`}, agents in worker processes (${PER_WORKER}/process max), heartbeat every ${HB_S} s, HTTP measured over ${WINDOW_S} s; ${machineName()}; control plane from ${CP_ROOT}\n`,
);
const headers = [...new Set(rows.flatMap((r) => Object.keys(r)))];
const first = headers.filter((h) => !h.startsWith('restart') && !h.startsWith('reconnects') && !h.startsWith('mass') && !h.startsWith('kill'));
const rest = ['broker', 'N', ...headers.filter((h) => !first.includes(h))];
console.log(formatTable(first, rows.map((r) => first.map((h) => r[h] ?? '-'))));
console.log('');
console.log(formatTable(rest, rows.map((r) => rest.map((h) => r[h] ?? '-'))));
if (PROFILE_DIR) {
  // main thread only (CPU.<date>.<time>.<pid>.0.<seq>): the other is tsx's loader thread
  for (const f of readdirSync(PROFILE_DIR).filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))) {
    console.log(`\nControl-plane CPU profile ${f}: ${busySeconds(join(PROFILE_DIR, f)).toFixed(1)} s busy; top self time, % of busy:`);
    for (const t of topFunctions(join(PROFILE_DIR, f), 15)) console.log(`${t.selfPct.toFixed(1).padStart(5)}%  ${t.name}  ${t.where}`);
  }
}
