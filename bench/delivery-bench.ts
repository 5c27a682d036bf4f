/**
 * Delivery bench: a 20 MB model to N in-process agents on the embedded broker and on Mosquitto, next to the raw broker
 * throughput measured in the same run (the control plane's own MQTT client publishing the same bytes as 256 KiB QoS 1
 * messages to N plain subscribers logged in as devices). Everything shares this machine's CPUs.
 *
 *   node --import tsx bench/delivery-bench.ts        # BENCH_AGENTS=20 BENCH_MB=20 BENCH_WINDOW=16
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { createDeliveryExtension } from '../control-plane/delivery/index.ts';
import { deviceTopic } from '../shared/topics.ts';
import { DEFAULT_CHUNK_SIZE } from '../shared/transfer.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type BrokerKind } from '../test/helpers/control-plane.ts';
import { connectRaw, enrollRaw } from '../test/helpers/raw-device.ts';
import { SIMULATED } from '../test/helpers/simulated-devices.ts';
import { formatTable } from './lib/table.ts';

const AGENTS = Number(process.env['BENCH_AGENTS'] ?? '20');
const MB = Number(process.env['BENCH_MB'] ?? '20');
const WINDOW = Number(process.env['BENCH_WINDOW'] ?? '16');
const SIZE = MB * 1024 * 1024;
const FACTS = SIMULATED.find((s) => s.expectProfile === 'x86-64-vnni')!.facts;
const work = mkdtempSync(join(tmpdir(), 'ef-dl-bench-'));
const modelPath = join(work, 'model.bin');
writeFileSync(modelPath, randomBytes(SIZE));

type Row = { broker: BrokerKind; agents: number; rawS: number; deliveryS: number; oneS: number };

async function benchBroker(kind: BrokerKind): Promise<Row> {
  const { extension, service } = createDeliveryExtension();
  const fleet = await startTestFleet(kind, { extensions: [extension] });
  const agents: AgentHandle[] = [];
  const raws: Awaited<ReturnType<typeof connectRaw>>[] = [];
  try {
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 2 * AGENTS + 2 } })).body.token as string;

    // raw: the same bytes, 256 KiB QoS 1 messages, at most 64 in flight (as the transfer server)
    const ids = Array.from({ length: AGENTS }, (_, i) => `raw-${kind}-${i}`);
    for (const id of ids) {
      const { password } = await enrollRaw(fleet.cp.brokerUrl, token, id);
      const c = await connectRaw(fleet.cp.brokerUrl, { clientId: id, username: id, password });
      await c.subscribeAsync(deviceTopic(id, 'xfer/data'), { qos: 1 });
      raws.push(c);
    }
    const got = new Map<string, number>(ids.map((id) => [id, 0]));
    raws.forEach((c, i) => c.on('message', (_t, p) => got.set(ids[i]!, got.get(ids[i]!)! + p.length)));
    const chunk = randomBytes(DEFAULT_CHUNK_SIZE);
    const perDevice = Math.ceil(SIZE / DEFAULT_CHUNK_SIZE);
    const jobs = ids.flatMap((id) => Array.from({ length: perDevice }, () => id));
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < jobs.length) await fleet.cp.ctx.fleet.publish(deviceTopic(jobs[next++]!, 'xfer/data'), chunk, 1);
      }),
    );
    await waitFor('raw bytes received', () => [...got.values()].every((n) => n >= perDevice * DEFAULT_CHUNK_SIZE), 600_000, 20);
    const rawS = (performance.now() - t0) / 1000;
    await Promise.all(raws.map((c) => c.endAsync()));
    raws.length = 0;

    const root = mkdtempSync(join(work, `agents-${kind}-`));
    const start = (i: number): Promise<AgentHandle> =>
      startAgent({ brokerUrl: fleet.cp.brokerUrl, stateDir: join(root, `a${i}`), enrollmentToken: token, deviceId: `bench-${kind}-${i}`, facts: FACTS, delivery: { window: WINDOW, trtexecPath: null } });
    agents.push(...(await Promise.all(Array.from({ length: AGENTS }, (_, i) => start(i)))));
    await Promise.all(agents.map((a) => a.waitFor('connected', 30_000)));
    await waitFor('agents registered', () => agents.every((a) => fleet.cp.ctx.devices.get(a.deviceId)?.profileId), 30_000);
    const installed = (id: string, modelId: string): boolean => service.store.events(id).some((e) => e.modelId === modelId && e.state === 'benchmarking');
    const source = (modelId: string) => ({ modelId, version: 1, profileId: 'x86-64-vnni', recipeId: 'x86-64-vnni', kind: 'int8' as const, modelPath, centralAccuracy: null, companions: [] });

    // hash once, outside the timing (registerTransfer is idempotent)
    await service.registerTransfer(modelPath);
    const t1 = performance.now();
    await service.deliver(agents[0]!.deviceId, source('solo'));
    await waitFor('one agent installed', () => installed(agents[0]!.deviceId, 'solo'), 600_000, 20);
    const oneS = (performance.now() - t1) / 1000;

    const t2 = performance.now();
    await Promise.all(agents.map((a) => service.deliver(a.deviceId, source('fleet'))));
    await waitFor('all agents installed', () => agents.every((a) => installed(a.deviceId, 'fleet')), 600_000, 20);
    const deliveryS = (performance.now() - t2) / 1000;
    return { broker: kind, agents: AGENTS, rawS, deliveryS, oneS };
  } finally {
    await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
    await Promise.all(raws.map((c) => c.endAsync().catch(() => {})));
    await fleet.stop();
  }
}

const rows: Row[] = [];
for (const kind of BROKER_KINDS) rows.push(await benchBroker(kind));
rmSync(work, { recursive: true, force: true });

const mbps = (bytes: number, s: number): string => (bytes / (1024 * 1024) / s).toFixed(1);
const total = SIZE * AGENTS;
console.log(`\nModel delivery: ${MB} MiB to ${AGENTS} agents, 256 KiB chunks, window ${WINDOW}; ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; control plane, broker and agents in one box\n`);
console.log(
  formatTable(
    ['broker', '1 agent: time', '1 agent MiB/s', `${AGENTS} agents: time`, 'aggregate MiB/s', 'raw MQTT: time', 'raw MiB/s', 'delivery / raw'],
    rows.map((r) => [r.broker, `${r.oneS.toFixed(2)} s`, mbps(SIZE, r.oneS), `${r.deliveryS.toFixed(2)} s`, mbps(total, r.deliveryS), `${r.rawS.toFixed(2)} s`, mbps(total, r.rawS), `${((r.rawS / r.deliveryS) * 100).toFixed(0)} %`]),
  ),
);
console.log('\nDelivery time: deploy sent until the agent reports `benchmarking` (all chunks in, each chunk and the whole file sha256-checked, file renamed into the model store).');
console.log('Raw: the same bytes as 256 KiB QoS 1 messages from the control plane\'s MQTT client to plain subscribers, no disk, no hashing.');
process.exit(0);
