/**
 * Flood bench (issue 8; not a test): one control plane, many enrolled devices sending malformed, oversized and
 * replayed messages for a fixed time, while well-behaved devices send heartbeats and an operator polls the API.
 * Prints messages/s rejected, peak RSS and whether service held (HTTP p99, heartbeats of the well-behaved devices).
 *
 *   node --import tsx bench/flood-bench.ts [--broker embedded|mosquitto|both] [--seconds 30] [--flooders 40] [--good 10]
 *
 * Flooders publish at QoS 0 as fast as their socket takes it, round-robin over: invalid JSON, schema-invalid
 * heartbeats, a 200 KB birth (under the brokers' packet limit, over every string bound), replays of one msgId,
 * xfer/req for unknown transfers, and reports for models never offered. Good devices send one valid heartbeat a
 * second; "held" means each of their heartbeats was stored (last_seen moved) and the API p99 stayed under 1 s.
 */
import type { MqttClient } from 'mqtt';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { createStandardRooms } from '../control-plane/compose.ts';
import { newMsgId } from '../shared/messages.ts';
import { deviceTopic } from '../shared/topics.ts';
import { startTestFleet, waitFor, type BrokerKind, type TestFleet } from '../test/helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw, heartbeatPayload } from '../test/helpers/raw-device.ts';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
};
const SECONDS = Number(arg('seconds', '30'));
const FLOODERS = Number(arg('flooders', '40'));
const GOOD = Number(arg('good', '10'));
const brokers: BrokerKind[] = arg('broker', 'both') === 'both' ? ['embedded', 'mosquitto'] : [arg('broker', 'embedded') as BrokerKind];
const MiB = 1024 * 1024;

const heartbeat = (msgId = newMsgId()): string => heartbeatPayload({ msgId, agentVersion: 'bench' });
const lat = { p50: 1, p90: 1, p99: 1, mean: 1, min: 1, max: 1, count: 1 };
const result = { runtime: 'onnxruntime-cpu', threads: 1, sessionCreateMs: 1, latencyMs: lat, throughputPerSecond: 1, throughputBatchSize: 1, peakRssBytes: 1, fileSizeBytes: 1, accuracy: null, agreement: null, integerKernelShare: null, topOps: [] };

function floodMessages(id: string): [string, string | Buffer][] {
  const replay = heartbeat(`replay-${id}`);
  return [
    ['heartbeat', '{"v":1,"msgId":'],
    ['heartbeat', JSON.stringify({ v: 1, msgId: newMsgId(), ts: -5, type: 'heartbeat', load1: 'high' })],
    ['birth', birthPayload(id, { hostname: 'h'.repeat(200_000) })],
    ['heartbeat', replay],
    ['xfer/req', JSON.stringify({ v: 1, msgId: newMsgId(), ts: Date.now(), transferId: randomBytes(16).toString('hex'), chunks: [0] })],
    ['report', JSON.stringify({ v: 1, msgId: newMsgId(), ts: Date.now(), kind: 'benchmark', rolloutId: null, model: { modelId: 'never-delivered', version: 1 }, result, baseline: { ...result, latencyMs: { ...lat, p50: 1000, p90: 1000, p99: 1000, mean: 1000, max: 1000 } } })],
    ['report', Buffer.from(randomBytes(300))],
  ];
}

const metricSum = (text: string, re: RegExp): number => [...text.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0);

async function run(kind: BrokerKind): Promise<Record<string, unknown>> {
  const fleet: TestFleet = await startTestFleet(kind, { presenceTimeoutMs: 3_600_000 }, (dataDir) => createStandardRooms({ dataDir, ui: false }).extensions);
  const clients: MqttClient[] = [];
  try {
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: FLOODERS + GOOD } })).body.token;
    const enroll = async (id: string): Promise<MqttClient> => {
      const { password } = await enrollRaw(fleet.cp.brokerUrl, token, id);
      const c = await connectRaw(fleet.cp.brokerUrl, { clientId: id, username: id, password });
      await c.publishAsync(deviceTopic(id, 'birth'), birthPayload(id), { qos: 1 });
      clients.push(c);
      return c;
    };
    const flooders: [string, MqttClient][] = [];
    for (let i = 0; i < FLOODERS; i++) flooders.push([`flood-${i}`, await enroll(`flood-${i}`)]);
    const good: [string, MqttClient][] = [];
    for (let i = 0; i < GOOD; i++) good.push([`good-${i}`, await enroll(`good-${i}`)]);
    await waitFor('all registered', () => good.every(([id]) => fleet.cp.ctx.devices.get(id)?.profileId) && flooders.every(([id]) => fleet.cp.ctx.devices.get(id)?.profileId), 60_000);

    const m0 = (await fleet.api('/metrics')).text;
    const rejected0 = metricSum(m0, /^edgefleet_(?:mqtt_messages_rejected|mqtt_messages_replayed|delivery_requests_refused|reports_refused)_total\{[^}]*\} (\d+)$/gm);
    const rssStart = process.memoryUsage().rss;
    let rssPeak = rssStart;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 100);
    const end = Date.now() + SECONDS * 1000;
    let sent = 0;
    let hbSent = 0;
    let hbMissed = 0;
    const httpMs: number[] = [];

    const flood = async ([id, c]: [string, MqttClient]): Promise<void> => {
      const msgs = floodMessages(id);
      let k = 0;
      while (Date.now() < end) {
        const [ch, payload] = msgs[k++ % msgs.length]!;
        if (!c.connected) return; // a broker may drop a client over its limits; the flood goes on from the others
        await new Promise<void>((r) => c.publish(deviceTopic(id, ch as never), payload, { qos: 0 }, () => r()));
        sent++;
        if (k % 50 === 0) await new Promise((r) => setImmediate(r));
      }
    };
    const beat = async ([id, c]: [string, MqttClient]): Promise<void> => {
      while (Date.now() < end - 1500) {
        const before = fleet.cp.ctx.devices.get(id)?.lastSeen ?? 0;
        await c.publishAsync(deviceTopic(id, 'heartbeat'), heartbeat(), { qos: 1 }).catch(() => {});
        hbSent++;
        // stored within 5 s (the presence writer batches), or counted as missed
        const ok = await waitFor(`${id} heartbeat stored`, () => (fleet.cp.ctx.devices.get(id)?.lastSeen ?? 0) > before, 5000, 50).then(() => true, () => false);
        if (!ok) hbMissed++;
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    const poll = async (): Promise<void> => {
      while (Date.now() < end) {
        const t = performance.now();
        await fleet.api('/devices?limit=100');
        httpMs.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const t0 = performance.now();
    await Promise.all([...flooders.map(flood), ...good.map(beat), poll()]);
    const elapsed = (performance.now() - t0) / 1000;
    // let the backlog drain before counting
    await new Promise((r) => setTimeout(r, 3000));
    clearInterval(sampler);
    const m1 = (await fleet.api('/metrics')).text;
    const rejected = metricSum(m1, /^edgefleet_(?:mqtt_messages_rejected|mqtt_messages_replayed|delivery_requests_refused|reports_refused)_total\{[^}]*\} (\d+)$/gm) - rejected0;
    httpMs.sort((a, b) => a - b);
    const p = (q: number): number => httpMs[Math.min(httpMs.length - 1, Math.floor(q * httpMs.length))] ?? NaN;
    const healthy = (await fleet.api('/healthz', { auth: null })).status === 200;
    const p99 = p(0.99);
    return {
      broker: kind,
      seconds: Math.round(elapsed),
      flooders: FLOODERS,
      flooderConnectedAtEnd: flooders.filter(([, c]) => c.connected).length,
      sent,
      rejectedPerSecond: Math.round(rejected / elapsed),
      sentPerSecond: Math.round(sent / elapsed),
      rssStartMiB: Math.round(rssStart / MiB),
      rssPeakMiB: Math.round(rssPeak / MiB),
      httpP50Ms: Math.round(p(0.5)),
      httpP99Ms: Math.round(p99),
      goodHeartbeats: `${hbSent - hbMissed}/${hbSent} stored`,
      held: healthy && hbMissed === 0 && p99 < 1000,
    };
  } finally {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await fleet.stop();
  }
}

console.log(`flood bench: ${SECONDS}s, ${FLOODERS} flooding devices, ${GOOD} well-behaved; ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, node ${process.version}`);
const rows = [];
for (const kind of brokers) rows.push(await run(kind));
console.table(rows);
process.exit(0);
