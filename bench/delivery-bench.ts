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
 *   BENCH_BEFORE=<another checkout> BENCH_BEFORE_AGENTS=20: also runs those rows with that checkout's control plane and
 *   agents (same process, same run), before this checkout's, for a before/after side by side
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MqttClient } from 'mqtt';
import type { AgentHandle } from '../agent/index.ts';
import type { DeliveryService } from '../control-plane/delivery/index.ts';
import { deviceTopic, transferDataTopic } from '../shared/topics.ts';
import { DEFAULT_CHUNK_SIZE } from '../shared/transfer.ts';
import { BROKER_KINDS, waitFor, type BrokerKind, type TestFleet } from '../test/helpers/control-plane.ts';
import { SIMULATED } from '../test/helpers/simulated-devices.ts';
import { machineName } from './lib/machine.ts';
import { formatTable } from './lib/table.ts';

const COUNTS = (process.env['BENCH_AGENTS'] ?? '1,20,200').split(',').map(Number);
const MB = Number(process.env['BENCH_MB'] ?? '20');
const MB_LARGE = Number(process.env['BENCH_MB_LARGE'] ?? '2');
const WINDOW = Number(process.env['BENCH_WINDOW'] ?? '16');
/** Unset: the agent's default. */
const FANOUT_WINDOW = process.env['BENCH_FANOUT_WINDOW'] ? Number(process.env['BENCH_FANOUT_WINDOW']) : undefined;
const KINDS = (process.env['BENCH_BROKERS']?.split(',') as BrokerKind[] | undefined) ?? BROKER_KINDS;
const MODES = (process.env['BENCH_MODES'] ?? 'unicast,fanout').split(',') as Mode[];
const MiB = 1024 * 1024;
const FACTS = SIMULATED.find((s) => s.expectProfile === 'x86-64-vnni')!.facts;
const work = mkdtempSync(join(tmpdir(), 'ef-dl-bench-'));
const sizeFor = (n: number): number => (n >= 100 ? MB_LARGE : MB) * MiB;

/** The control plane, agent and test harness of one checkout (this one, or BENCH_BEFORE's). */
type Impl = {
  label: string;
  startAgent: typeof import('../agent/index.ts').startAgent;
  createDeliveryExtension: typeof import('../control-plane/delivery/index.ts').createDeliveryExtension;
  startTestFleet: typeof import('../test/helpers/control-plane.ts').startTestFleet;
  connectRaw: typeof import('../test/helpers/raw-device.ts').connectRaw;
  enrollRaw: typeof import('../test/helpers/raw-device.ts').enrollRaw;
};

async function load(root: string, label: string): Promise<Impl> {
  const at = (p: string): string => pathToFileURL(join(root, p)).href;
  const [agent, delivery, cp, rawDevice] = await Promise.all([
    import(at('agent/index.ts')) as Promise<typeof import('../agent/index.ts')>,
    import(at('control-plane/delivery/index.ts')) as Promise<typeof import('../control-plane/delivery/index.ts')>,
    import(at('test/helpers/control-plane.ts')) as Promise<typeof import('../test/helpers/control-plane.ts')>,
    import(at('test/helpers/raw-device.ts')) as Promise<typeof import('../test/helpers/raw-device.ts')>,
  ]);
  return { label, startAgent: agent.startAgent, createDeliveryExtension: delivery.createDeliveryExtension, startTestFleet: cp.startTestFleet, connectRaw: rawDevice.connectRaw, enrollRaw: rawDevice.enrollRaw };
}

type Mode = 'unicast' | 'fanout';
type Row = { code: string; broker: BrokerKind; agents: number; sizeBytes: number; mode: Mode; deliveryS: number; publishedBytes: number; rawS: number; rawPublishedBytes: number };

/** Plain subscribers logged in as devices, grown as rows need more. */
async function rawPool(impl: Impl, fleet: TestFleet, token: string, kind: BrokerKind, pool: { id: string; c: MqttClient }[], n: number): Promise<{ id: string; c: MqttClient }[]> {
  while (pool.length < n) {
    const batch = Array.from({ length: Math.min(20, n - pool.length) }, (_, i) => `raw-${kind}-${pool.length + i}`);
    pool.push(
      ...(await Promise.all(
        batch.map(async (id) => {
          const { password } = await impl.enrollRaw(fleet.cp.brokerUrl, token, id);
          const c = await impl.connectRaw(fleet.cp.brokerUrl, { clientId: id, username: id, password });
          await c.subscribeAsync(deviceTopic(id, 'xfer/data'), { qos: 1 });
          return { id, c };
        }),
      )),
    );
  }
  return pool.slice(0, n);
}

/** The same bytes as the delivery: per device (unicast) or once on a shared topic (fan-out); seconds until all arrived. */
async function raw(fleet: TestFleet, subs: { id: string; c: MqttClient }[], sizeBytes: number, mode: Mode): Promise<{ s: number; published: number }> {
  const chunk = randomBytes(DEFAULT_CHUNK_SIZE);
  const perDevice = Math.ceil(sizeBytes / DEFAULT_CHUNK_SIZE);
  const got = new Map<string, number>(subs.map((s) => [s.id, 0]));
  const shared = transferDataTopic(`raw-bench-${mode}-${subs.length}-${Date.now()}`);
  if (mode === 'fanout') {
    await fleet.cp.ctx.broker.grantTransferRead(shared.split('/')[3]!, subs.map((s) => s.id));
    await Promise.all(subs.map((s) => s.c.subscribeAsync(shared, { qos: 1 })));
  }
  const listeners = subs.map((s) => {
    const l = (): void => void got.set(s.id, got.get(s.id)! + 1);
    s.c.on('message', l);
    return l;
  });
  const topics = mode === 'fanout' ? Array.from({ length: perDevice }, () => shared) : subs.flatMap((s) => Array.from({ length: perDevice }, () => deviceTopic(s.id, 'xfer/data')));
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < topics.length) await fleet.cp.ctx.fleet.publish(topics[next++]!, chunk, 1);
    }),
  );
  await waitFor('raw bytes received', () => [...got.values()].every((n) => n >= perDevice), 600_000, 10);
  const s = (performance.now() - t0) / 1000;
  subs.forEach((x, i) => x.c.off('message', listeners[i]!));
  if (mode === 'fanout') await Promise.all(subs.map((x) => x.c.unsubscribeAsync(shared)));
  return { s, published: topics.length * DEFAULT_CHUNK_SIZE };
}

async function delivery(service: DeliveryService, agents: AgentHandle[], sizeBytes: number, mode: Mode, tag: string): Promise<{ s: number; published: number }> {
  const path = join(work, `${tag}.bin`);
  writeFileSync(path, randomBytes(sizeBytes));
  // hash outside the timing (registerTransfer is idempotent); a new file per row, so no row finds another's frames cached
  await service.registerTransfer(path);
  service.setFanout(mode === 'fanout');
  const before = service.transfers.publishedStats();
  // counted from the install-state events, not by polling SQLite per agent (that showed in the bench's own profile)
  const done = new Set<string>();
  const off = service.onInstallState((deviceId, model, state) => void (model.modelId === tag && state === 'benchmarking' && done.add(deviceId)));
  const t0 = performance.now();
  await Promise.all(
    agents.map((a) => service.deliver(a.deviceId, { modelId: tag, version: 1, profileId: 'x86-64-vnni', recipeId: 'x86-64-vnni', kind: 'int8', modelPath: path, centralAccuracy: null, companions: [] })),
  );
  await waitFor(`${tag} installed`, () => done.size >= agents.length, 900_000, 10);
  const s = (performance.now() - t0) / 1000;
  off();
  const after = service.transfers.publishedStats();
  rmSync(path, { force: true });
  return { s, published: after.unicastBytes + after.fanoutBytes - before.unicastBytes - before.fanoutBytes };
}

async function benchBroker(impl: Impl, kind: BrokerKind, counts: number[]): Promise<Row[]> {
  const { extension, service } = impl.createDeliveryExtension();
  const fleet = await impl.startTestFleet(kind, { extensions: [extension] });
  const agents: AgentHandle[] = [];
  const pool: { id: string; c: MqttClient }[] = [];
  const rows: Row[] = [];
  try {
    const most = Math.max(...counts);
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 2 * most + 2 } })).body.token as string;
    const root = mkdtempSync(join(work, `agents-${kind}-`));
    for (const n of counts) {
      const sizeBytes = sizeFor(n);
      while (agents.length < n) {
        const batch = Array.from({ length: Math.min(25, n - agents.length) }, (_, i) => agents.length + i);
        const started = await Promise.all(
          batch.map((i) =>
            impl.startAgent({
              brokerUrl: fleet.cp.brokerUrl,
              stateDir: join(root, `a${i}`),
              enrollmentToken: token,
              deviceId: `bench-${kind}-${i}`,
              facts: FACTS,
              heartbeatIntervalMs: 60_000,
              delivery: { window: WINDOW, ...(FANOUT_WINDOW ? { fanoutWindow: FANOUT_WINDOW } : {}), trtexecPath: null, runBenchmarks: false },
            }),
          ),
        );
        agents.push(...started);
        await Promise.all(started.map((a) => a.waitFor('connected', 120_000)));
        await waitFor('agents registered', () => started.every((a) => fleet.cp.ctx.devices.get(a.deviceId)?.profileId), 120_000);
      }
      const subs = await rawPool(impl, fleet, token, kind, pool, n);
      for (const mode of MODES) {
        const r = await raw(fleet, subs, sizeBytes, mode);
        const d = await delivery(service, agents.slice(0, n), sizeBytes, mode, `${mode}-${n}`);
        rows.push({ code: impl.label, broker: kind, agents: n, sizeBytes, mode, deliveryS: d.s, publishedBytes: d.published, rawS: r.s, rawPublishedBytes: r.published });
        console.error(JSON.stringify(rows[rows.length - 1]));
      }
    }
    return rows;
  } finally {
    await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
    await Promise.all(pool.map((p) => p.c.endAsync().catch(() => {})));
    await fleet.stop();
  }
}

const loadAtStart = loadavg();
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

const mib = (b: number): string => (b / MiB).toFixed(1);
console.log(
  `\nModel delivery vs raw MQTT, same run; 256 KiB chunks, window ${WINDOW}; ${machineName()}; control plane, broker and all agents in one process (Node ${process.version}); load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end\n`,
);
console.log(
  formatTable(
    ['code', 'broker', 'agents', 'model', 'mode', 'CP published', 'delivery time', 'delivered MiB/s', 'raw same bytes', 'raw MiB/s', 'delivery / raw'],
    rows.map((r) => {
      const delivered = r.sizeBytes * r.agents;
      return [
        r.code,
        r.broker,
        String(r.agents),
        `${mib(r.sizeBytes)} MiB`,
        r.mode,
        `${mib(r.publishedBytes)} MiB`,
        `${r.deliveryS.toFixed(2)} s`,
        mib(delivered / r.deliveryS),
        `${r.rawS.toFixed(2)} s`,
        mib(delivered / r.rawS),
        `${((r.rawS / r.deliveryS) * 100).toFixed(0)} %`,
      ];
    }),
  ),
);
console.log('\nDelivery time: deploy sent until every agent reports `benchmarking` (all chunks in, each chunk and the whole file sha256-checked, file renamed into the model store).');
console.log('CP published: chunk payload bytes the control plane published (per-device frames + shared-topic frames, re-requests included).');
console.log('Raw: the same bytes as 256 KiB QoS 1 messages from the control plane\'s MQTT client to plain subscribers (unicast: one copy per device; fan-out: one copy on a shared topic), no disk, no hashing.');
process.exit(0);
