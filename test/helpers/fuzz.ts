import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { createStandardRooms } from '../../control-plane/compose.ts';
import { newMsgId } from '../../shared/messages.ts';
import { deviceTopic, type DeviceChannel } from '../../shared/topics.ts';
import { startTestFleet, waitFor, type BrokerKind, type TestFleet } from './control-plane.ts';
import { birthPayload, connectRaw, enrollRaw } from './raw-device.ts';

/**
 * Property-based fuzzing of a real control plane (issue 8): fast-check generates HTTP requests for every route the
 * control plane documents in /openapi.json (arbitrary JSON bodies, near-valid bodies mutated from a valid one, hostile
 * path ids and query strings) and MQTT payloads for every channel a device may publish on (arbitrary JSON, near-valid
 * payloads mutated from valid ones, raw bytes), sent from a real device login. Shared by
 * test/adversarial/fuzz-schemas.test.ts (a few thousand cases) and bench/fuzz-bench.ts (100,000).
 *
 * What must hold: no 5xx, no unhandled rejection or exception, the control plane still healthy, RSS growth under a
 * bound, and not one stored row of another device (the victim) changed.
 */

export type FuzzOptions = { kind: BrokerKind; httpCases: number; mqttCases: number; seed: number; onProgress?: (line: string) => void };
export type FuzzOutcome = {
  kind: BrokerKind;
  httpCases: number;
  httpByStatus: Record<string, number>;
  fiveHundreds: { method: string; path: string; status: number; body: string }[];
  mqttSent: number;
  mqttCounted: number;
  mqttReconnects: number;
  unhandled: string[];
  healthyAfter: boolean;
  victimChanged: string | null;
  rssStartMiB: number;
  rssPeakMiB: number;
  seconds: number;
};

const MiB = 1024 * 1024;
const VICTIM = 'fuzz-victim';
const ATTACKER = 'fuzz-attacker';

const NASTY_STRINGS = ['', '..', '.', '../../etc/passwd', 'edgefleet-control-plane', 'enroll-abc', VICTIM, '$SYS', '+', '#', '__proto__', 'constructor', '<script>alert(1)</script>', '\u0000', 'é'.repeat(300), 'x'.repeat(5000), '0x10', '1e309', '-1', 'NaN'];
const NASTY_NUMBERS = [0, -1, 1, 0.5, -0.0, 1e308, -1e308, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 2 ** 53, 1e-320, 4_102_444_800_001];
const DELETE = Symbol('delete');

const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(...NASTY_STRINGS, ...NASTY_NUMBERS, null, true, false, {}, [], DELETE, { __proto__: { polluted: 1 } }, Array.from({ length: 2000 }, () => 1)),
  fc.jsonValue({ maxDepth: 4 }),
  fc.string({ maxLength: 300 }),
  fc.double(),
  fc.integer(),
);

type Path = (string | number)[];
function paths(v: unknown, prefix: Path = []): Path[] {
  if (Array.isArray(v)) return [prefix, ...v.flatMap((x, i) => paths(x, [...prefix, i]))];
  if (v && typeof v === 'object') return [prefix, ...Object.entries(v).flatMap(([k, x]) => paths(x, [...prefix, k]))];
  return [prefix];
}

function apply(seed: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value === DELETE ? undefined : value;
  const root = structuredClone(seed) as Record<string | number, unknown>;
  let o = root;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  if (!o || typeof o !== 'object') return root;
  const last = path.at(-1)!;
  if (value === DELETE) {
    if (Array.isArray(o)) o.splice(Number(last), 1);
    else delete o[last];
  } else o[last] = value;
  return root;
}

/** One to three mutations of a valid value: a field replaced by a hostile value, deleted, or an extra field added. */
export function nearValid(seed: unknown): fc.Arbitrary<unknown> {
  const one = fc.tuple(fc.nat(), nastyValue, fc.boolean(), fc.string({ maxLength: 20 })).map(([i, v, add, key]) => ({ i, v, add, key }));
  return fc.array(one, { minLength: 1, maxLength: 3 }).map((muts) => {
    let out = seed;
    for (const m of muts) {
      const ps = paths(out);
      const p = ps[m.i % ps.length]!;
      out = m.add && p.length > 0 ? apply(out, [...p.slice(0, -1), m.key || '__proto__'], m.v) : apply(out, p, m.v);
      if (out === undefined) out = {};
    }
    return out;
  });
}

const body = (seed: unknown | null): fc.Arbitrary<unknown> => (seed === null ? fc.oneof(fc.jsonValue({ maxDepth: 5 }), nearValid({})) : fc.oneof({ weight: 1, arbitrary: fc.jsonValue({ maxDepth: 5 }) }, { weight: 3, arbitrary: nearValid(seed) }));

/** Valid bodies to mutate. Routes that would start real work when valid (training, tuning, model import) get none. */
const SEEDS: Record<string, unknown> = {
  'POST /enrollment-tokens': { label: 'fuzz', expiresInSeconds: 3600, maxUses: 1 },
  'PATCH /devices/{id}': { labels: { site: 'x' }, profileOverride: 'generic-cpu' },
  'POST /rollouts': { name: 'r', models: [{ modelId: 'm-1', version: 1, profileId: 'generic-cpu' }], labels: { a: 'b' }, waves: { canary: { count: 1 }, then: { percents: [50, 100] } }, gates: { maxFailurePercent: 20 } },
  'POST /deliveries': { deviceId: ATTACKER, source: { modelId: 'm-1', version: 1, profileId: 'generic-cpu', recipeId: 'generic-cpu', kind: 'int8', modelPath: '/nonexistent/m.onnx', centralAccuracy: null, companions: [] }, rolloutId: null },
};

const idArb = fc.oneof(fc.constantFrom('..', '.', 'A', 'dev-1', 'edgefleet-control-plane', 'x'.repeat(200), '%2e%2e', 'ro-0000000000', 'm-1', '0x10', '-1', '1e3'), fc.string({ maxLength: 80 }));
const queryArb = fc.oneof(
  fc.constant(''),
  fc.dictionary(fc.constantFrom('limit', 'offset', 'version', 'format', 'status', 'label', 'profile', 'state', 'x'), fc.oneof(fc.constantFrom('0x10', '1e3', '-1', '', '99999999999999999999', 'csv', 'json', 'a=b,c', '16'), fc.string({ maxLength: 50 })), { maxKeys: 3 }).map((q) => `?${new URLSearchParams(q).toString()}`),
);

type Op = { method: string; path: string; hasBody: boolean };

/** Seeds of every MQTT payload a device may send, built for the attacker (some naming the victim). */
function mqttSeeds(): { channel: DeviceChannel; seed: unknown }[] {
  const env = () => ({ v: 1, msgId: newMsgId(), ts: Date.now() });
  const lat = { p50: 1, p90: 2, p99: 3, mean: 1.5, min: 0.5, max: 4, count: 10 };
  const result = { runtime: 'onnxruntime-cpu', threads: 1, sessionCreateMs: 1, latencyMs: lat, throughputPerSecond: 1, throughputBatchSize: 1, peakRssBytes: 1, fileSizeBytes: 1, accuracy: 0.9, agreement: null, integerKernelShare: null, topOps: [] };
  return [
    { channel: 'birth', seed: JSON.parse(birthPayload(ATTACKER)) },
    { channel: 'birth', seed: JSON.parse(birthPayload(VICTIM)) },
    { channel: 'heartbeat', seed: { ...env(), type: 'heartbeat', agentVersion: 'x', uptimeSeconds: 1, load1: 0.1, cpuPercent: 5, memUsedBytes: 1, memTotalBytes: 2, temperatureC: 40, activeModel: { modelId: 'm-1', version: 1 } } },
    { channel: 'status', seed: { v: 1, state: 'online', ts: Date.now() } },
    { channel: 'report', seed: { ...env(), kind: 'install-state', rolloutId: null, model: { modelId: 'm-victim', version: 1 }, state: 'active', progress: null, reason: null } },
    { channel: 'report', seed: { ...env(), kind: 'benchmark', rolloutId: null, model: { modelId: 'm-victim', version: 1 }, result, baseline: result } },
    { channel: 'report', seed: { ...env(), kind: 'evaluation', tuningId: 'tun-1', model: { modelId: 'm-1', version: 1 }, state: 'done', result, reason: null, loadPerCore: 0.1 } },
    { channel: 'xfer/req', seed: { ...env(), transferId: '0123456789abcdef0123456789abcdef-65536', chunks: [0, 1, 2] } },
  ];
}

/** Every stored row that concerns the victim, as one string (tables with a device_id column, and its devices row). */
function victimSnapshot(fleet: TestFleet): string {
  const db = fleet.cp.ctx.db;
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
  const out: Record<string, unknown> = {};
  for (const t of tables) {
    const cols = (db.prepare(`PRAGMA table_info("${t}")`).all() as { name: string }[]).map((c) => c.name);
    if (t === 'devices') out[t] = db.prepare('SELECT * FROM devices WHERE id = ?').all(VICTIM);
    else if (cols.includes('device_id')) out[t] = db.prepare(`SELECT * FROM "${t}" WHERE device_id = ?`).all(VICTIM);
  }
  return JSON.stringify(out);
}

const counted = (metrics: string): number => {
  let n = 0;
  for (const m of metrics.matchAll(/^edgefleet_mqtt_messages_(?:accepted|rejected|replayed)_total\{[^}]*\} (\d+)$/gm)) n += Number(m[1]);
  return n;
};

export async function runFuzz(o: FuzzOptions): Promise<FuzzOutcome> {
  const started = performance.now();
  const unhandled: string[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(String(e instanceof Error ? (e.stack ?? e.message) : e));
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  const rssStart = process.memoryUsage().rss;
  let rssPeak = rssStart;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 100);
  const fleet = await startTestFleet(o.kind, { presenceTimeoutMs: 3_600_000 }, (dataDir) => createStandardRooms({ dataDir, ui: false, rolloutTickMs: 1000 }).extensions);
  let attacker: MqttClient | null = null;
  try {
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 2 } })).body.token;
    const victimCreds = await enrollRaw(fleet.cp.brokerUrl, token, VICTIM);
    const victim = await connectRaw(fleet.cp.brokerUrl, { clientId: VICTIM, username: VICTIM, password: victimCreds.password });
    await victim.publishAsync(deviceTopic(VICTIM, 'birth'), birthPayload(VICTIM), { qos: 1 });
    await waitFor('victim registered', () => fleet.cp.ctx.devices.get(VICTIM)?.profileId);
    await victim.endAsync();
    const attackerCreds = await enrollRaw(fleet.cp.brokerUrl, token, ATTACKER);
    const login = { clientId: ATTACKER, username: ATTACKER, password: attackerCreds.password };
    attacker = await connectRaw(fleet.cp.brokerUrl, login);
    await attacker.publishAsync(deviceTopic(ATTACKER, 'birth'), birthPayload(ATTACKER), { qos: 1 });
    await waitFor('attacker registered', () => fleet.cp.ctx.devices.get(ATTACKER)?.profileId);
    const before = victimSnapshot(fleet);

    // ---------------------------------------------------------------- HTTP
    const doc = (await fleet.api('/openapi.json')).body as { paths: Record<string, Record<string, { requestBody?: unknown }>> };
    const ops: Op[] = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([m, op]) => ({ method: m.toUpperCase(), path, hasBody: op.requestBody !== undefined })));
    const reqArb = fc.constantFrom(...ops).chain((op) =>
      fc.record({
        op: fc.constant(op),
        ids: fc.array(idArb, { minLength: 3, maxLength: 3 }),
        query: queryArb,
        body: op.hasBody ? body(SEEDS[`${op.method} ${op.path}`] ?? null) : fc.constant(undefined),
        auth: fc.constantFrom<'good' | 'none' | 'bad'>('good', 'good', 'good', 'good', 'none', 'bad'),
      }),
    );
    const httpByStatus: Record<string, number> = {};
    const fiveHundreds: FuzzOutcome['fiveHundreds'] = [];
    const BATCH = 500;
    for (let done = 0; done < o.httpCases; done += BATCH) {
      const batch = fc.sample(reqArb, { numRuns: Math.min(BATCH, o.httpCases - done), seed: o.seed + done });
      for (const r of batch) {
        let k = 0;
        const path = r.op.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(r.ids[k++ % 3]!)) + r.query;
        const init: RequestInit & { json?: unknown; auth?: string | null } = { method: r.op.method, auth: r.auth === 'good' ? undefined : r.auth === 'none' ? null : 'wrong-token' } as never;
        if (r.body !== undefined) init.json = r.body;
        let status: number;
        let text = '';
        try {
          const res = await fleet.api(path, init);
          status = res.status;
          text = res.text;
        } catch (e) {
          status = 599;
          text = String(e);
        }
        httpByStatus[status] = (httpByStatus[status] ?? 0) + 1;
        if (status >= 500 && !(status === 503 && /broker/i.test(text))) fiveHundreds.push({ method: r.op.method, path: path.slice(0, 200), status, body: text.slice(0, 300) });
      }
      o.onProgress?.(`${o.kind}: http ${Math.min(done + BATCH, o.httpCases)}/${o.httpCases}`);
    }

    // ---------------------------------------------------------------- MQTT
    const seeds = mqttSeeds();
    const payloadArb = fc.constantFrom(...seeds).chain(({ channel, seed }) =>
      fc.record({
        channel: fc.constant(channel),
        payload: fc.oneof(
          { weight: 4, arbitrary: nearValid(seed).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
          { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)) },
          { weight: 1, arbitrary: fc.constant(Buffer.from(JSON.stringify(seed))) }, // valid, and replayed: same msgId as the seed
        ),
      }),
    );
    const metricsBefore = counted((await fleet.api('/metrics')).text);
    let sent = 0;
    let reconnects = 0;
    for (let done = 0; done < o.mqttCases; done += BATCH) {
      const batch = fc.sample(payloadArb, { numRuns: Math.min(BATCH, o.mqttCases - done), seed: o.seed + 7 + done });
      for (const m of batch) {
        if (!attacker.connected) {
          await attacker.endAsync(true).catch(() => {});
          attacker = await connectRaw(fleet.cp.brokerUrl, login);
          reconnects++;
        }
        await attacker.publishAsync(deviceTopic(ATTACKER, m.channel), m.payload, { qos: 1 }).catch(() => {});
        sent++;
      }
      o.onProgress?.(`${o.kind}: mqtt ${Math.min(done + BATCH, o.mqttCases)}/${o.mqttCases}`);
    }
    let mqttCounted = 0;
    await waitFor(
      'every fuzzed MQTT message accepted, rejected or counted as a replay',
      async () => {
        mqttCounted = counted((await fleet.api('/metrics')).text) - metricsBefore;
        return mqttCounted >= sent;
      },
      60_000,
      250,
    ).catch(() => undefined);
    // let anything the messages triggered (rollout ticks, store writes) run before the last checks
    await new Promise((r) => setTimeout(r, 1500));
    const after = victimSnapshot(fleet);
    const healthyAfter = (await fleet.api('/healthz', { auth: null })).status === 200;
    return {
      kind: o.kind,
      httpCases: o.httpCases,
      httpByStatus,
      fiveHundreds,
      mqttSent: sent,
      mqttCounted,
      mqttReconnects: reconnects,
      unhandled,
      healthyAfter,
      victimChanged: before === after ? null : `before ${before.slice(0, 500)}\nafter ${after.slice(0, 500)}`,
      rssStartMiB: Math.round(rssStart / MiB),
      rssPeakMiB: Math.round(rssPeak / MiB),
      seconds: Math.round((performance.now() - started) / 1000),
    };
  } finally {
    clearInterval(sampler);
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    await attacker?.endAsync(true).catch(() => {});
    await fleet.stop();
  }
}
