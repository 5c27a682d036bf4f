/**
 * Delivery bench: a model to N in-process agents on the embedded broker and on Mosquitto, per-device (unicast) and
 * fan-out (one publish per chunk per wave on `transfers/{id}/data`), each next to the raw broker throughput for the
 * same bytes measured in the same run:
 * - raw unicast: the control plane's own MQTT client publishes the model's bytes as 256 KiB QoS 1 messages to each of
 *   N plain subscribers logged in as devices (at most 64 in flight, as the transfer server);
 * - raw fan-out: the same bytes once on one shared topic that N plain subscribers listen to.
 * Everything shares this machine's CPUs; agents do not run the benchmark after an install (see runBenchmarks).
 *
 *   nice -n 10 node --import tsx bench/delivery-bench.ts
 *   BENCH_AGENTS=1,20,200 BENCH_MB=20 BENCH_MB_LARGE=2 (model size for rows of 100+ agents) BENCH_WINDOW=16 BENCH_BROKERS=embedded,mosquitto
 *   BENCH_PROFILE=<dir> (CPU profiles of the control-plane process and the device processes over each delivery)
 *   BENCH_REPEAT=3 (raw/delivery pairs per row; medians shown) BENCH_PROCS=2 (device processes), BENCH_DEVICE_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p' (Node flags for them)
 *   BENCH_BEFORE=<another checkout> BENCH_BEFORE_AGENTS=20: also runs those rows with that checkout's control plane and
 *   agents (same run), before this checkout's, for a before/after side by side
 *   BENCH_DEVICE_STATE=<dir>: where the agents keep their state (model store, transfers); default the bench's scratch
 *   folder on this host's disk. /dev/shm takes this VM's disk (ext4 on virtio) off the devices' side: devices write to
 *   their own storage on a fleet, here they write to the disk the control plane and broker use
 *   BENCH_TOUCH_PAGES=1: before each measurement (raw and delivery alike) write and delete a scratch file of 1.25 x the
 *   bytes delivered, so the page cache the agents write into is memory this VM touched a moment ago (see
 *   bench/lib/page-cache.ts: first-touch writes here are 4-10x slower, and raw subscribers write nothing)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, setPriority, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DeliveryService } from '../control-plane/delivery/index.ts';
import { deviceTopic, transferDataTopic } from '../shared/topics.ts';
import { DEFAULT_CHUNK_SIZE } from '../shared/transfer.ts';
import { BROKER_KINDS, waitFor, type BrokerKind, type TestFleet } from '../test/helpers/control-plane.ts';
import { SIMULATED } from '../test/helpers/simulated-devices.ts';
import type { WorkerCommand, WorkerReply } from './lib/delivery-worker.ts';
import { machineName } from './lib/machine.ts';
import { findPid, procCpuSeconds } from './lib/proc.ts';
import { touchPageCache } from './lib/page-cache.ts';
import { formatTable } from './lib/table.ts';

const COUNTS = (process.env['BENCH_AGENTS'] ?? '1,20,200').split(',').map(Number).sort((a, b) => a - b);
/** Device processes the agents (and the raw subscribers) are spread over, as devices are separate machines on a fleet. */
/** BENCH_PROFILE=<dir>: CPU profiles of the bench process (control plane, embedded broker) and of each device process over each delivery. */
const PROFILE_DIR = process.env['BENCH_PROFILE'] ?? null;
/** Raw/delivery pairs per row. */
const REPEAT = Math.max(1, Number(process.env['BENCH_REPEAT'] ?? '3'));
const PROCS = Number(process.env['BENCH_PROCS'] ?? '2');
/** Their nice value (unset: the bench's own). */
const DEVICE_NICE = process.env['BENCH_DEVICE_NICE'] ? Number(process.env['BENCH_DEVICE_NICE']) : null;
const MB = Number(process.env['BENCH_MB'] ?? '20');
const MB_LARGE = Number(process.env['BENCH_MB_LARGE'] ?? '2');
const WINDOW = Number(process.env['BENCH_WINDOW'] ?? '16');
/** Unset: the agent's default. */
const FANOUT_WINDOW = process.env['BENCH_FANOUT_WINDOW'] ? Number(process.env['BENCH_FANOUT_WINDOW']) : undefined;
const KINDS = (process.env['BENCH_BROKERS']?.split(',') as BrokerKind[] | undefined) ?? BROKER_KINDS;
const MODES = (process.env['BENCH_MODES'] ?? 'unicast,fanout').split(',') as Mode[];
const TOUCH_PAGES = process.env['BENCH_TOUCH_PAGES'] === '1';
/** BENCH_PERSIST=0 leaves out the raw + persist measurement. */
const PERSIST = process.env['BENCH_PERSIST'] !== '0';
const MiB = 1024 * 1024;
const FACTS = SIMULATED.find((s) => s.expectProfile === 'x86-64-vnni')!.facts;
const work = mkdtempSync(join(tmpdir(), 'ef-dl-bench-'));
const deviceState = process.env['BENCH_DEVICE_STATE'] ? mkdtempSync(join(process.env['BENCH_DEVICE_STATE'], 'ef-dl-bench-devices-')) : work;
const sizeFor = (n: number): number => (n >= 100 ? MB_LARGE : MB) * MiB;

/** The control plane and test harness of one checkout (this one, or BENCH_BEFORE's); its agents run in the device processes. */
type Impl = {
  label: string;
  root: string;
  createDeliveryExtension: typeof import('../control-plane/delivery/index.ts').createDeliveryExtension;
  startTestFleet: typeof import('../test/helpers/control-plane.ts').startTestFleet;
};

async function load(root: string, label: string): Promise<Impl> {
  const at = (p: string): string => pathToFileURL(join(root, p)).href;
  const [delivery, cp] = await Promise.all([
    import(at('control-plane/delivery/index.ts')) as Promise<typeof import('../control-plane/delivery/index.ts')>,
    import(at('test/helpers/control-plane.ts')) as Promise<typeof import('../test/helpers/control-plane.ts')>,
  ]);
  return { label, root, createDeliveryExtension: delivery.createDeliveryExtension, startTestFleet: cp.startTestFleet };
}

type Mode = 'unicast' | 'fanout';
type Row = {
  code: string;
  broker: BrokerKind;
  agents: number;
  sizeBytes: number;
  mode: Mode;
  deliveryS: number;
  chunksS: number | null;
  publishedBytes: number;
  rawS: number;
  rawPublishedBytes: number;
  rawCpu: Cpu;
  cpu: Cpu;
  ratioLo: number;
  ratioHi: number;
  /** Raw + persist (BENCH_PERSIST): the same raw bytes, each sha256-hashed, written and fsynced by its subscriber. */
  persist: { s: number; cpu: Cpu; ratioLo: number; ratioHi: number } | null;
};

/** One device process (bench/lib/delivery-worker.ts): agents and raw subscribers, added as rows need more. */
type DeviceProc = { proc: ChildProcess; replies: ((r: WorkerReply) => void)[]; rawDone: ((at: number) => void) | null; agents: number; raws: number };

function startDeviceProc(): DeviceProc {
  const proc = fork(join(import.meta.dirname, 'lib', 'delivery-worker.ts'), [], { execArgv: ['--import', 'tsx', ...(process.env['BENCH_DEVICE_NODE_ARGS']?.split(' ').filter(Boolean) ?? [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  // devices are other machines on a fleet; here they share two cores with the control plane and the broker. Made to
  // yield (BENCH_DEVICE_NICE=19, as bench/fleet-scale.ts does) they slowed both measurements down on this host, so by
  // default they run as the bench does. Agents and raw subscribers live in the same processes: same priority.
  if (DEVICE_NICE !== null) {
    try {
      setPriority(proc.pid!, DEVICE_NICE);
    } catch {
      // not allowed here: the devices then compete with the control plane on equal terms, in both measurements
    }
  }
  const p: DeviceProc = { proc, replies: [], rawDone: null, agents: 0, raws: 0 };
  proc.on('message', (m: WorkerReply) => {
    if ('rawDone' in m) p.rawDone?.(m.rawDone);
    else p.replies.shift()?.(m);
  });
  proc.on('exit', (code, signal) => {
    for (const r of p.replies.splice(0)) r({ error: `device process exited (${code ?? signal})` });
  });
  return p;
}

async function call(p: DeviceProc, cmd: WorkerCommand): Promise<number | undefined> {
  const r = await new Promise<WorkerReply>((resolve) => {
    p.replies.push(resolve);
    p.proc.send(cmd);
  });
  if ('error' in r) throw new Error(`device process ${p.proc.pid}: ${r.error}`);
  return 'cpuS' in r ? r.cpuS : undefined;
}

async function startProfile(): Promise<{ stop: (file: string) => Promise<void> } | null> {
  if (!PROFILE_DIR) return null;
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    stop: async (file) => {
      const { profile } = await session.post('Profiler.stop');
      mkdirSync(PROFILE_DIR, { recursive: true });
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** CPU seconds (user + system) so far: this process (control plane, and the embedded broker), Mosquitto, the device processes. */
type Cpu = { cp: number; broker: number; devices: number };
async function cpuNow(procs: DeviceProc[], mosquittoPid: number | null): Promise<Cpu> {
  const own = process.cpuUsage();
  const devices = (await Promise.all(procs.map((p) => call(p, { op: 'cpu' })))).reduce<number>((s, x) => s + (x ?? 0), 0);
  return { cp: (own.user + own.system) / 1e6, broker: mosquittoPid ? procCpuSeconds(mosquittoPid) : 0, devices };
}
const cpuSince = (a: Cpu, b: Cpu): Cpu => ({ cp: b.cp - a.cp, broker: b.broker - a.broker, devices: b.devices - a.devices });

/** Adds agents (or raw subscribers) up to n in all, spread round-robin over the device processes. */
async function grow(procs: DeviceProc[], what: 'agents' | 'raws', n: number, make: (p: DeviceProc, ids: string[]) => WorkerCommand, idOf: (i: number) => string): Promise<string[]> {
  const have = procs.reduce((s, p) => s + p[what], 0);
  await Promise.all(
    procs.map(async (p, k) => {
      const ids: string[] = [];
      for (let i = have; i < n; i++) if (i % procs.length === k) ids.push(idOf(i));
      if (!ids.length) return;
      await call(p, make(p, ids));
      p[what] += ids.length;
    }),
  );
  return Array.from({ length: n }, (_, i) => idOf(i));
}

/** The same bytes as the delivery: per device (unicast) or once on a shared topic (fan-out); seconds until all arrived. */
async function raw(fleet: TestFleet, procs: DeviceProc[], mosqPid: number | null, ids: string[], sizeBytes: number, mode: Mode, persistDir: string | null): Promise<{ s: number; cpu: Cpu; published: number }> {
  const chunk = randomBytes(DEFAULT_CHUNK_SIZE);
  const perDevice = Math.ceil(sizeBytes / DEFAULT_CHUNK_SIZE);
  const shared = mode === 'fanout' ? transferDataTopic(`raw-bench-${mode}-${ids.length}-${Date.now()}`) : null;
  if (shared) await fleet.cp.ctx.broker.grantTransferRead(shared.split('/')[3]!, ids);
  const busy = procs.filter((p) => p.raws > 0);
  await Promise.all(busy.map((p) => call(p, { op: 'arm', n: perDevice, shared, persistDir })));
  const done = Promise.all(busy.map((p) => new Promise<number>((resolve) => (p.rawDone = resolve))));
  const topics = shared ? Array.from({ length: perDevice }, () => shared) : ids.flatMap((id) => Array.from({ length: perDevice }, () => deviceTopic(id, 'xfer/data')));
  if (TOUCH_PAGES) touchPageCache(deviceState, 1.25 * sizeBytes * ids.length);
  const cpu0 = await cpuNow(procs, mosqPid);
  const t0 = performance.timeOrigin + performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < topics.length) await fleet.cp.ctx.fleet.publish(topics[next++]!, chunk, 1);
    }),
  );
  const ends = await Promise.race([done, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('raw bytes not all received in 600 s')), 600_000).unref())]);
  const s = (Math.max(...ends) - t0) / 1000;
  const cpu = cpuSince(cpu0, await cpuNow(procs, mosqPid));
  await Promise.all(busy.map((p) => call(p, { op: 'disarm', shared })));
  return { s, cpu, published: topics.length * DEFAULT_CHUNK_SIZE };
}

async function delivery(service: DeliveryService, procs: DeviceProc[], mosqPid: number | null, agents: string[], sizeBytes: number, mode: Mode, tag: string): Promise<{ s: number; chunksS: number | null; cpu: Cpu; published: number }> {
  const path = join(work, `${tag}.bin`);
  writeFileSync(path, randomBytes(sizeBytes));
  // hash outside the timing (registerTransfer is idempotent); a new file per row, so no row finds another's frames cached
  await service.registerTransfer(path);
  service.setFanout(mode === 'fanout');
  const before = service.transfers.publishedStats();
  // counted from the install-state events, not by polling SQLite per agent (that showed in the bench's own profile)
  const done = new Set<string>();
  const verifying = new Set<string>();
  let allChunksAt = 0;
  const off = service.onInstallState((deviceId, model, state) => {
    if (model.modelId !== tag) return;
    if (state === 'benchmarking') done.add(deviceId);
    // reported when a device holds every chunk and has fsynced the file: the transfer part, before its whole-file check and install
    if (state === 'verifying' && verifying.add(deviceId).size === agents.length) allChunksAt = performance.now();
  });
  if (TOUCH_PAGES) touchPageCache(deviceState, 1.25 * sizeBytes * agents.length);
  const cpu0 = await cpuNow(procs, mosqPid);
  const profiling = await startProfile();
  if (PROFILE_DIR) await Promise.all(procs.map((p) => call(p, { op: 'profile-start' })));
  const t0 = performance.now();
  await Promise.all(
    agents.map((id) => service.deliver(id, { modelId: tag, version: 1, profileId: 'x86-64-vnni', recipeId: 'x86-64-vnni', kind: 'int8', modelPath: path, centralAccuracy: null, companions: [] })),
  );
  await waitFor(`${tag} installed`, () => done.size >= agents.length, 900_000, 10);
  const s = (performance.now() - t0) / 1000;
  await profiling?.stop(join(PROFILE_DIR!, `delivery-${tag}.cpuprofile`));
  if (PROFILE_DIR) await Promise.all(procs.map((p, k) => call(p, { op: 'profile-stop', file: join(PROFILE_DIR, `delivery-${tag}-devices-${k}.cpuprofile`) })));
  const cpu = cpuSince(cpu0, await cpuNow(procs, mosqPid));
  const chunksS = allChunksAt ? (allChunksAt - t0) / 1000 : null;
  off();
  const after = service.transfers.publishedStats();
  rmSync(path, { force: true });
  return { s, chunksS, cpu, published: after.unicastBytes + after.fanoutBytes - before.unicastBytes - before.fanoutBytes };
}

async function benchBroker(impl: Impl, kind: BrokerKind, counts: number[]): Promise<Row[]> {
  const { extension, service } = impl.createDeliveryExtension();
  const fleet = await impl.startTestFleet(kind, { extensions: [extension] });
  const procs = Array.from({ length: Math.max(1, Math.min(PROCS, Math.max(...counts))) }, startDeviceProc);
  const rows: Row[] = [];
  try {
    const most = Math.max(...counts);
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 2 * most + 2 } })).body.token as string;
    const stateRoot = mkdtempSync(join(deviceState, `agents-${kind}-`));
    const persistDir = mkdtempSync(join(deviceState, `raw-persist-${kind}-`));
    const brokerUrl = fleet.cp.brokerUrl;
    // the Mosquitto process started for this fleet (found by its config folder), for its CPU time
    const mosqPid = fleet.mosquitto ? findPid(fleet.mosquitto.dir) : null;
    for (const n of counts) {
      const sizeBytes = sizeFor(n);
      const agents = await grow(procs, 'agents', n, (_, ids) => ({ op: 'agents', root: impl.root, brokerUrl, token, ids, stateRoot, facts: FACTS, window: WINDOW, ...(FANOUT_WINDOW ? { fanoutWindow: FANOUT_WINDOW } : {}) }), (i) => `bench-${kind}-${i}`);
      await waitFor('agents registered', () => agents.every((id) => fleet.cp.ctx.devices.get(id)?.profileId), 120_000);
      const subs = await grow(procs, 'raws', n, (_, ids) => ({ op: 'raw', root: impl.root, brokerUrl, token, ids }), (i) => `raw-${kind}-${i}`);
      for (const mode of MODES) {
        // raw, raw + persist and delivery alternate, REPEAT times: the host's noise falls on all; the table shows medians
        // and the range of the ratios within one repeat
        const pairs: { r: Awaited<ReturnType<typeof raw>>; p: Awaited<ReturnType<typeof raw>> | null; d: Awaited<ReturnType<typeof delivery>> }[] = [];
        for (let k = 0; k < REPEAT; k++) {
          const r = await raw(fleet, procs, mosqPid, subs, sizeBytes, mode, null);
          const p = PERSIST ? await raw(fleet, procs, mosqPid, subs, sizeBytes, mode, persistDir) : null;
          const d = await delivery(service, procs, mosqPid, agents, sizeBytes, mode, `${mode}-${n}-${k}`);
          pairs.push({ r, p, d });
          console.error(JSON.stringify({ code: impl.label, broker: kind, agents: n, mode, run: k, rawS: r.s, persistS: p?.s, deliveryS: d.s, chunksS: d.chunksS, published: d.published }));
        }
        const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
        const medCpu = (cs: Cpu[]): Cpu => ({ cp: med(cs.map((c) => c.cp)), broker: med(cs.map((c) => c.broker)), devices: med(cs.map((c) => c.devices)) });
        const chunks = pairs.map((p) => p.d.chunksS).filter((x): x is number => x !== null);
        const ratios = pairs.map((p) => p.r.s / p.d.s);
        rows.push({
          code: impl.label,
          broker: kind,
          agents: n,
          sizeBytes,
          mode,
          deliveryS: med(pairs.map((p) => p.d.s)),
          chunksS: chunks.length ? med(chunks) : null,
          publishedBytes: med(pairs.map((p) => p.d.published)),
          rawS: med(pairs.map((p) => p.r.s)),
          rawPublishedBytes: pairs[0]!.r.published,
          rawCpu: medCpu(pairs.map((p) => p.r.cpu)),
          cpu: medCpu(pairs.map((p) => p.d.cpu)),
          ratioLo: Math.min(...ratios),
          ratioHi: Math.max(...ratios),
          persist: PERSIST
            ? {
                s: med(pairs.map((p) => p.p!.s)),
                cpu: medCpu(pairs.map((p) => p.p!.cpu)),
                ratioLo: Math.min(...pairs.map((p) => p.p!.s / p.d.s)),
                ratioHi: Math.max(...pairs.map((p) => p.p!.s / p.d.s)),
              }
            : null,
        });
      }
    }
    return rows;
  } finally {
    // the device processes exit when their IPC channel closes; their sockets close with them
    await Promise.all(procs.map((p) => new Promise<void>((resolve) => (p.proc.exitCode !== null ? resolve() : (p.proc.once('exit', () => resolve()), p.proc.disconnect())))));
    await fleet.stop();
  }
}

const loadAtStart = loadavg();
// this host's page-cache write speed into memory not touched lately, then into the pages just freed
const pageCache = [touchPageCache(deviceState, 256 * MiB), touchPageCache(deviceState, 256 * MiB)];
const here = await load(resolve(import.meta.dirname, '..'), 'this');
const beforeRoot = process.env['BENCH_BEFORE'];
const before = beforeRoot ? await load(resolve(beforeRoot), 'before') : null;
const beforeCounts = (process.env['BENCH_BEFORE_AGENTS'] ?? '20').split(',').map(Number);
const rows: Row[] = [];
for (const kind of KINDS) {
  if (before) rows.push(...(await benchBroker(before, kind, beforeCounts)));
  rows.push(...(await benchBroker(here, kind, COUNTS)));
}
rmSync(work, { recursive: true, force: true });
rmSync(deviceState, { recursive: true, force: true });

const mib = (b: number): string => (b / MiB).toFixed(1);
console.log(
  `\nModel delivery vs raw MQTT, same run; 256 KiB chunks, window ${WINDOW}; ${machineName()}; control plane and broker in one process, the agents and raw subscribers in ${PROCS} device processes (Node ${process.version}); load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end; page-cache writes of 256 MiB at the start ${pageCache.map((x) => x.toFixed(0)).join(' then ')} MiB/s${TOUCH_PAGES ? '; pages touched before each measurement (BENCH_TOUCH_PAGES)' : ''}; agents' state in ${deviceState === work ? `${tmpdir()} (this host's disk)` : process.env['BENCH_DEVICE_STATE']}\n`,
);
console.log(
  formatTable(
    ['code', 'broker', 'agents', 'model', 'mode', 'CP published', 'all chunks in', 'delivery time', 'delivered MiB/s', 'raw same bytes', 'raw MiB/s', 'delivery / raw', `range (${REPEAT} pairs)`, ...(PERSIST ? ['raw + persist', 'delivery / (raw + persist)'] : [])],
    rows.map((r) => {
      const delivered = r.sizeBytes * r.agents;
      return [
        r.code,
        r.broker,
        String(r.agents),
        `${mib(r.sizeBytes)} MiB`,
        r.mode,
        `${mib(r.publishedBytes)} MiB`,
        r.chunksS === null ? '-' : `${r.chunksS.toFixed(2)} s`,
        `${r.deliveryS.toFixed(2)} s`,
        mib(delivered / r.deliveryS),
        `${r.rawS.toFixed(2)} s`,
        mib(delivered / r.rawS),
        `${((r.rawS / r.deliveryS) * 100).toFixed(0)} %`,
        `${(r.ratioLo * 100).toFixed(0)}-${(r.ratioHi * 100).toFixed(0)} %`,
        ...(r.persist ? [`${r.persist.s.toFixed(2)} s`, `${((r.persist.s / r.deliveryS) * 100).toFixed(0)} % (${(r.persist.ratioLo * 100).toFixed(0)}-${(r.persist.ratioHi * 100).toFixed(0)} %)`] : []),
      ];
    }),
  ),
);
console.log(`\nCPU seconds spent during each measurement (medians of ${REPEAT}): the control-plane process (with the embedded broker in it), Mosquitto, and the device processes\n`);
const cpuCell = (c: Cpu, kind: BrokerKind): string => `${c.cp.toFixed(2)} / ${kind === 'mosquitto' ? c.broker.toFixed(2) : '-'} / ${c.devices.toFixed(2)}`;
const total = (c: Cpu): string => (c.cp + c.broker + c.devices).toFixed(2);
console.log(
  formatTable(
    ['code', 'broker', 'agents', 'mode', 'raw: cp / broker / devices', ...(PERSIST ? ['raw + persist: cp / broker / devices'] : []), 'delivery: cp / broker / devices', 'raw total', ...(PERSIST ? ['raw + persist total'] : []), 'delivery total'],
    rows.map((r) => [
      r.code,
      r.broker,
      String(r.agents),
      r.mode,
      cpuCell(r.rawCpu, r.broker),
      ...(r.persist ? [cpuCell(r.persist.cpu, r.broker)] : []),
      cpuCell(r.cpu, r.broker),
      total(r.rawCpu),
      ...(r.persist ? [total(r.persist.cpu)] : []),
      total(r.cpu),
    ]),
  ),
);
console.log('\nAll chunks in: deploy sent until every agent has reported `verifying` (it holds every chunk, each sha256-checked, and has fsynced the file).');
console.log('Delivery time: deploy sent until every agent reports `benchmarking` (all chunks in, file fsynced and whole-file checked, renamed into the model store).');
console.log(`Times, MiB/s and the ratio are medians of ${REPEAT} raw/delivery pairs run alternately; the range is the lowest and highest ratio of one pair.`);
if (PERSIST) console.log('Raw + persist: the raw bytes again, each message also sha256-hashed and written at its place in a file by its subscriber, fsynced after the last: the least any delivery must do on the devices, with no protocol (no asks, manifest, bitmap or reports).');
console.log('CP published: chunk payload bytes the control plane published (per-device frames + shared-topic frames, re-requests included).');
console.log('Raw: the same bytes as 256 KiB QoS 1 messages from the control plane\'s MQTT client to plain subscribers (unicast: one copy per device; fan-out: one copy on a shared topic), no disk, no hashing.');
process.exit(0);
