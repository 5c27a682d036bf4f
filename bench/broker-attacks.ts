/**
 * Replays issue 8's broker attacks (items 2, 3, 5, 6, 11) against both brokers and prints one row per
 * attack: tries and outcome. Uses only the HTTP API, raw MQTT and the test helpers, so it runs unchanged
 * on an older checkout (copy it into that checkout's bench/), which is how the "before" column was taken.
 *
 *   nice -n 10 node --import tsx bench/broker-attacks.ts     # BENCH_GUESSES=500
 */
import mqtt from 'mqtt';
import { cpus } from 'node:os';
import { deviceTopic } from '../shared/topics.ts';
import { BROKER_KINDS, startTestFleet, type BrokerKind, type TestFleet } from '../test/helpers/control-plane.ts';
import { connectRaw, enrollRaw } from '../test/helpers/raw-device.ts';

const GUESSES = Number(process.env['BENCH_GUESSES'] ?? '500');
const crashes: string[] = [];
process.on('unhandledRejection', (e) => void crashes.push(String(e).slice(0, 120)));
process.on('uncaughtException', (e) => void crashes.push(String(e).slice(0, 120)));
const rows: string[] = [];
const row = (attack: string, kind: BrokerKind, tries: number | string, outcome: string): void => void rows.push(`| ${attack} | ${kind} | ${tries} | ${outcome} |`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tryConnect(url: string, o: { clientId: string; username: string; password: string }): Promise<boolean> {
  const keep = setTimeout(() => {}, 15_000); // a login the broker never answers must not let the event loop drain
  const r = await Promise.race([
    connectRaw(url, o).then(
      (c) => (c.end(true), true),
      () => false,
    ),
    sleep(12_000).then(() => false),
  ]);
  clearTimeout(keep);
  return r;
}

async function takeover(fleet: TestFleet, kind: BrokerKind, token: string): Promise<void> {
  const v = await enrollRaw(fleet.cp.brokerUrl, token, 'victim');
  const victim = await connectRaw(fleet.cp.brokerUrl, { clientId: 'victim', username: 'victim', password: v.password });
  let kicked = 0;
  victim.on('close', () => kicked++);
  const [tokenId, secret] = token.split('.') as [string, string];
  let accepted = 0;
  for (let i = 0; i < 5; i++) if (await tryConnect(fleet.cp.brokerUrl, { clientId: 'victim', username: `enroll-${tokenId}`, password: secret })) accepted++;
  await sleep(500);
  row('client-id takeover (enrollee uses an enrolled device\'s client id)', kind, 5, `${accepted}/5 attacker logins accepted, victim disconnected ${kicked} time(s)`);
  victim.end(true);
}

async function reservedId(fleet: TestFleet, kind: BrokerKind, token: string): Promise<void> {
  const before = crashes.length;
  let outcome: string;
  try {
    const r = await enrollRaw(fleet.cp.brokerUrl, token, 'edgefleet-control-plane');
    outcome = r.response.ok ? 'enrolled' : `refused by the control plane (${(r.response as { error: string }).error.slice(0, 60)})`;
  } catch (e) {
    outcome = `refused (${String(e).slice(0, 60)})`;
  }
  await sleep(1000);
  let restart = 'restart ok';
  try {
    await fleet.restartControlPlane();
    const h = await fleet.api('/healthz', { auth: null });
    restart = `restart ok, healthz ${h.status}`;
  } catch (e) {
    restart = `control plane cannot start again: ${String(e).slice(0, 80)}`;
  }
  row('enroll the reserved id edgefleet-control-plane', kind, 1, `${outcome}; ${restart}${crashes.length > before ? `; crashed: ${crashes[before]}` : ''}`);
}

async function oversize(fleet: TestFleet, kind: BrokerKind, token: string): Promise<void> {
  const d = await enrollRaw(fleet.cp.brokerUrl, token, 'big');
  const rss0 = process.memoryUsage().rss;
  const c = await connectRaw(fleet.cp.brokerUrl, { clientId: 'big', username: 'big', password: d.password });
  c.on('error', () => {});
  const closed = new Promise<boolean>((resolve) => {
    c.once('close', () => resolve(true));
    setTimeout(() => resolve(false), 15_000);
  });
  c.publish(deviceTopic('big', 'report'), Buffer.alloc(64 * 1024 * 1024, 0x61), { qos: 0 });
  const wasClosed = await closed;
  const rss1 = process.memoryUsage().rss;
  c.end(true);
  void rss0;
  void rss1;
  row('64 MiB MQTT publish from a device', kind, 1, wasClosed ? 'connection closed' : 'accepted (connection open)');
}

async function retained(fleet: TestFleet, kind: BrokerKind, token: string): Promise<void> {
  if (!fleet.mosquitto) return;
  const d = await enrollRaw(fleet.cp.brokerUrl, token, 'ret');
  const c = await connectRaw(fleet.cp.brokerUrl, { clientId: 'ret', username: 'ret', password: d.password });
  c.on('error', () => {});
  c.publish(deviceTopic('ret', 'heartbeat'), 'retained junk', { qos: 1, retain: true }, () => {});
  await sleep(500);
  c.end(true);
  const m = fleet.mosquitto;
  const reader = mqtt.connect(m.url, { clientId: 'edgefleet-bench-reader', username: m.username, password: m.password, reconnectPeriod: 0 });
  let got = 0;
  reader.on('message', (_t, _p, p) => p.retain && got++);
  await new Promise<void>((resolve) => reader.once('connect', () => resolve()));
  await reader.subscribeAsync(deviceTopic('ret', 'heartbeat'), { qos: 1 });
  await sleep(500);
  reader.end(true);
  row('retained publish on a device heartbeat topic', kind, 1, got ? 'stored: every new subscriber gets it' : 'refused, nothing retained');
}

async function guessing(fleet: TestFleet, kind: BrokerKind, token: string): Promise<void> {
  const d = await enrollRaw(fleet.cp.brokerUrl, token, 'target');
  const t0 = performance.now();
  let i = 0;
  let answered = 0;
  let accepted = 0;
  const firstWindow: number[] = [];
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (i < GUESSES) {
        i++;
        const ok = await tryConnect(fleet.cp.brokerUrl, { clientId: 'target', username: 'target', password: `wrong-${i}-wrong-wrong-wrong-wrong` });
        answered++;
        if (ok) accepted++;
        firstWindow.push(performance.now() - t0);
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  const c0 = performance.now();
  let ok = false;
  while (!ok && performance.now() - c0 < 30_000) {
    ok = await tryConnect(fleet.cp.brokerUrl, { clientId: 'target', username: 'target', password: d.password });
    if (!ok) await sleep(200);
  }
  await sleep(2500); // Mosquitto's plugin reports its counters every 2 s
  const metrics = (await fleet.api('/metrics')).text.split('\n').filter((l) => l.startsWith('edgefleet_broker_auth_failures_total'));
  const counted = metrics.reduce((a, l) => a + Number(l.split(' ').pop()), 0);
  row(
    `${GUESSES} wrong device passwords, 50 in parallel`,
    kind,
    GUESSES,
    `answered at ${(answered / s).toFixed(0)}/s over ${s.toFixed(1)} s, ${accepted} accepted; counted ${counted}${metrics.some((l) => l.includes('braked')) ? ` (${metrics.join(', ').replace(/edgefleet_broker_auth_failures_total/g, '')})` : ''}; correct login ${ok ? `in after ${((performance.now() - c0) / 1000).toFixed(1)} s` : 'refused for 30 s'}`,
  );
}

async function outage(fleet: TestFleet, kind: BrokerKind): Promise<void> {
  if (!fleet.mosquitto) return;
  const before = crashes.length;
  await fleet.mosquitto.stop();
  await sleep(1000);
  const r = await Promise.race([fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 1 } }), sleep(14_000).then(() => null)]);
  await sleep(Math.max(0, 15_000 - 1000));
  // an older test helper has no start(): restart() of a stopped broker starts it
  const m = fleet.mosquitto as { start?: () => Promise<void>; restart: () => Promise<void> };
  await (m.start ? m.start() : m.restart());
  await sleep(3000);
  const h = await fleet.api('/healthz', { auth: null }).catch(() => null);
  row(
    'Mosquitto down 15 s, POST /enrollment-tokens meanwhile',
    kind,
    1,
    `answer ${r ? `${r.status} ${r.text.slice(0, 70)}` : 'none within 14 s'}; ${crashes.length > before ? `unhandled rejection (process would exit): ${crashes[before]!.slice(0, 70)}` : 'no crash'}; healthz after ${h?.status ?? 'none'}`,
  );
}

console.log(`machine: ${cpus().length}x ${cpus()[0]?.model ?? 'unknown'}`);
for (const kind of BROKER_KINDS) {
  const fleet = await startTestFleet(kind);
  try {
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 50 } })).body.token as string;
    // the order matters on an older checkout: what can take a broker or the control plane down goes last
    for (const [name, step] of [
      ['takeover', () => takeover(fleet, kind, token)],
      ['retained', () => retained(fleet, kind, token)],
      ['guessing', () => guessing(fleet, kind, token)],
      ['outage', () => outage(fleet, kind)],
      ['reserved id', () => reservedId(fleet, kind, token)],
      ['oversize', () => oversize(fleet, kind, token)],
    ] as const) {
      console.error(`${kind}: ${name}`);
      const keep = setInterval(() => {}, 1000);
      let done = false;
      await Promise.race([step().finally(() => (done = true)), sleep(120_000).then(() => done || row(name, kind, '-', 'no outcome within 120 s (hung)'))]).catch((e: unknown) => row(name, kind, '-', `failed: ${String(e).slice(0, 100)}`));
      clearInterval(keep);
    }
  } catch (e) {
    row('(bench aborted)', kind, '-', String(e).slice(0, 120));
  } finally {
    await fleet.stop().catch(() => {});
  }
}
console.log('| attack | broker | tries | outcome |\n|---|---|---|---|');
for (const r of rows) console.log(r);
process.exit(0);
