/**
 * Ingest bench (not a test): what one inbound device message costs the control plane. One control plane (with the
 * embedded broker in it, or beside Mosquitto) in its own process, N enrolled raw devices in another sending QoS 1
 * heartbeats at a fixed total rate for a fixed time; prints the control plane's CPU seconds (user and system) per
 * heartbeat accepted. Measurements alternate between this checkout and BENCH_BEFORE's, so the host's noise falls on both.
 *
 * BENCH_KIND=reconnect measures a device's reconnect instead, as after a control-plane restart: the device says
 * goodbye (DISCONNECT, no will), connects again with its will, subscribes to its command and chunk topics, publishes
 * its retained `online` and a birth, the agent's connect sequence (agent/session.ts); CPU per birth accepted.
 *
 *   node --import tsx bench/ingest-bench.ts
 *   BENCH_BROKERS=embedded,mosquitto BENCH_DEVICES=200 BENCH_RATE=2000 (heartbeats/s, all devices; reconnects/s: 50)
 *   BENCH_SECONDS=15 BENCH_REPEAT=3 BENCH_BEFORE=<another checkout> (its control plane and helpers, measured
 *   alternately with this one) BENCH_KIND=heartbeat|reconnect
 *
 * Internal modes (one measurement each, spawned by the above): --measure <root> <broker>, --devices (the device process).
 */
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { alternate, checkouts } from './lib/alternate.ts';
import { machineName } from './lib/machine.ts';
import { formatTable } from './lib/table.ts';

type Result = { sent: number; accepted: number; userS: number; systemS: number };

const env = (k: string, d: string): string => process.env[k] ?? d;
const BROKERS = env('BENCH_BROKERS', 'embedded,mosquitto').split(',');
const DEVICES = Number(env('BENCH_DEVICES', '200'));
const KIND = env('BENCH_KIND', 'heartbeat') as 'heartbeat' | 'reconnect';
if (KIND !== 'heartbeat' && KIND !== 'reconnect') throw new Error(`BENCH_KIND: heartbeat or reconnect, not ${String(KIND)}`);
const RATE = Number(env('BENCH_RATE', KIND === 'reconnect' ? '50' : '2000'));
const CHANNEL = KIND === 'reconnect' ? 'birth' : 'heartbeat';
const SECONDS = Number(env('BENCH_SECONDS', '15'));
const REPEAT = Number(env('BENCH_REPEAT', '3'));
const BEFORE = process.env['BENCH_BEFORE'] ?? null;
const HERE = join(import.meta.dirname, '..');

// not test/helpers/raw-device.ts's heartbeatPayload: the device process loads the helpers of the checkout measured,
// and an older one may not have it
const heartbeat = (newMsgId: () => string): string =>
  JSON.stringify({ v: 1, msgId: newMsgId(), ts: Date.now(), type: 'heartbeat', agentVersion: 'bench', uptimeSeconds: 1, load1: 0.1, cpuPercent: 1, memUsedBytes: 1, memTotalBytes: 2, temperatureC: null, activeModel: null });

/** The device process: enrolls and connects N raw devices of `root`'s helpers, then sends heartbeats when told. */
async function devices(): Promise<void> {
  const { root, url, token, n } = JSON.parse(process.env['INGEST_DEVICES']!) as { root: string; url: string; token: string; n: number };
  const { connectRaw, enrollRaw, birthPayload } = await import(join(root, 'test/helpers/raw-device.ts'));
  const { deviceTopic } = await import(join(root, 'shared/topics.ts'));
  const { newMsgId } = await import(join(root, 'shared/messages.ts'));
  type Device = { c: import('mqtt').MqttClient; id: string; password: string; busy: boolean };
  /** The agent's connect sequence: will, subscriptions, retained online, birth. */
  const connect = async (id: string, password: string): Promise<import('mqtt').MqttClient> => {
    const stamp = Date.now();
    const c = await connectRaw(url, { clientId: id, username: id, password, will: { topic: deviceTopic(id, 'status'), payload: Buffer.from(JSON.stringify({ v: 1, state: 'offline', ts: stamp })), qos: 1, retain: true } });
    await c.subscribeAsync({ [deviceTopic(id, 'cmd')]: { qos: 1 }, [deviceTopic(id, 'xfer/data')]: { qos: 1 } });
    await c.publishAsync(deviceTopic(id, 'status'), JSON.stringify({ v: 1, state: 'online', ts: stamp }), { qos: 1, retain: true });
    await c.publishAsync(deviceTopic(id, 'birth'), birthPayload(id), { qos: 1 });
    return c;
  };
  const clients: Device[] = [];
  for (let i = 0; i < n; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, n - i) }, async (_, k) => {
        const id = `ingest-${i + k}`;
        const { password } = await enrollRaw(url, token, id);
        clients[i + k] = { c: await connect(id, password), id, password, busy: false };
      }),
    );
  }
  process.send!({ ready: true });
  process.once('message', (m: { rate: number; seconds: number; kind: 'heartbeat' | 'reconnect' }) => {
    let sent = 0;
    let due = 0;
    let next = 0;
    const t0 = Date.now();
    const reconnect = async (d: Device): Promise<void> => {
      d.busy = true;
      await d.c.endAsync(); // DISCONNECT: no will
      d.c = await connect(d.id, d.password);
      d.busy = false;
    };
    const timer = setInterval(() => {
      due += m.rate / 100;
      for (; due >= 1; due--, sent++) {
        const d = clients[next++ % clients.length]!;
        if (m.kind === 'heartbeat') d.c.publish(deviceTopic(d.id, 'heartbeat'), heartbeat(newMsgId), { qos: 1 });
        else if (d.busy) throw new Error(`device ${d.id} still reconnecting a round later: lower BENCH_RATE or raise BENCH_DEVICES`);
        else void reconnect(d).catch((e: unknown) => { console.error(String(e)); process.exit(1); });
      }
      if (Date.now() - t0 >= m.seconds * 1000) {
        clearInterval(timer);
        process.send!({ sent });
      }
    }, 10);
  });
}

/** One measurement: `root`'s control plane in this process, its devices in a child. Prints one JSON line. */
async function measure(root: string, broker: string): Promise<void> {
  const { startTestFleet, waitFor } = await import(join(root, 'test/helpers/control-plane.ts'));
  const fleet = await startTestFleet(broker);
  const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: DEVICES } })).body.token as string;
  const child = fork(import.meta.filename, ['--devices'], {
    env: { ...process.env, INGEST_DEVICES: JSON.stringify({ root, url: fleet.cp.brokerUrl, token, n: DEVICES }) },
    execArgv: ['--import', 'tsx'],
  });
  const next = (): Promise<Record<string, number>> => new Promise((r) => child.once('message', r as never));
  await next();
  const re = new RegExp(`^edgefleet_mqtt_messages_accepted_total\\{channel="${CHANNEL}"\\} (\\d+)`, 'm');
  const accepted = async (): Promise<number> => Number(re.exec((await fleet.api('/metrics')).text)?.[1] ?? 0);
  const a0 = await accepted();
  const c0 = process.cpuUsage();
  child.send({ rate: RATE, seconds: SECONDS, kind: KIND });
  const { sent } = (await next()) as { sent: number };
  // the CPU window closes when the control plane has accepted what was sent (or 30 s later)
  await waitFor(`${CHANNEL}s accepted`, async () => (await accepted()) - a0 >= sent, 30_000, 20).catch(() => {});
  const cpu = process.cpuUsage(c0);
  const r: Result = { sent, accepted: (await accepted()) - a0, userS: cpu.user / 1e6, systemS: cpu.system / 1e6 };
  child.kill();
  await fleet.stop();
  console.log(JSON.stringify(r));
  process.exit(0);
}

async function main(): Promise<void> {
  const codes = checkouts(HERE, BEFORE);
  const load0 = loadavg();
  const rows: (string | number)[][] = [];
  for (const broker of BROKERS) {
    const by = await alternate<Result>(import.meta.filename, codes, REPEAT, [broker], { broker });
    for (const [code] of codes) {
      const rs = by.get(code)!;
      const per = (f: (r: Result) => number): string => rs.map((r) => ((f(r) / r.accepted) * 1e6).toFixed(0)).join(' / ');
      rows.push([code, broker, DEVICES, `${RATE}/s x ${SECONDS} s`, rs.map((r) => `${r.accepted}/${r.sent}`).join(' '), per((r) => r.userS + r.systemS), per((r) => r.systemS)]);
    }
  }
  console.log(`\nControl-plane CPU per ${KIND === 'reconnect' ? 'reconnect (birth accepted)' : 'heartbeat accepted'}; ${machineName()}; Node ${process.version}; load average ${load0.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end; ${REPEAT} measurements per row, alternated${BEFORE ? ` (before: ${BEFORE})` : ''}\n`);
  console.log(formatTable(['code', 'broker', 'devices', `${KIND}s`, 'accepted/sent', `CPU us per ${KIND} (each run)`, 'of it system'], rows));
  console.log('\nThe control plane with the embedded broker includes the broker\'s work; beside Mosquitto it is the control plane alone.');
}

const [mode, a, b] = process.argv.slice(2);
if (mode === '--devices') await devices();
else if (mode === '--measure') await measure(a!, b!);
else await main();
