/**
 * Broker enrollment bench: N devices enroll by the wire protocol (test/helpers/raw-device.ts) with C at
 * once, then each logs in with its own credential and publishes its birth; prints the time to all
 * enrolled and to all registered (online in the store), and Mosquitto's CPU seconds. Runs unchanged on
 * an older checkout (it only uses the HTTP API, MQTT and the test helpers), which is how the "before"
 * figures in the README were taken.
 *
 *   nice -n 10 node --import tsx bench/broker-enroll-bench.ts   # BENCH_BROKER=mosquitto BENCH_N=500,2000 BENCH_C=50
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { deviceTopic } from '../shared/topics.ts';
import { startTestFleet, type BrokerKind } from '../test/helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw } from '../test/helpers/raw-device.ts';

const KIND = (process.env['BENCH_BROKER'] ?? 'mosquitto') as BrokerKind;
const NS = (process.env['BENCH_N'] ?? '500').split(',').map(Number);
const C = Number(process.env['BENCH_C'] ?? '50');

function brokerCpuSeconds(port: number): number | null {
  // the mosquitto process listening on this port: find it through /proc (the test helper spawned it)
  try {
    for (const pid of readFileSync('/proc/self/task/' + process.pid + '/children', 'utf8').trim().split(/\s+/)) {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.startsWith('mosquitto')) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(stat[11]) + Number(stat[12])) / 100;
    }
  } catch {
    return null;
  }
  void port;
  return null;
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

async function run(n: number): Promise<void> {
  const fleet = await startTestFleet(KIND);
  try {
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: n + 10 } })).body.token as string;
    const ids = Array.from({ length: n }, (_, i) => `bench-${i}`);
    const pw = new Map<string, string>();
    const cpu0 = fleet.mosquitto ? brokerCpuSeconds(fleet.mosquitto.port) : null;
    const t0 = performance.now();
    let failed = 0;
    await pool(ids, C, async (id) => {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          const r = await enrollRaw(fleet.cp.brokerUrl, token, id);
          if (r.response.ok) {
            pw.set(id, r.password);
            return;
          }
        } catch {
          // retried below
        }
      }
      failed++;
    });
    const enrolledS = (performance.now() - t0) / 1000;
    await pool([...pw.keys()], C, async (id) => {
      const c = await connectRaw(fleet.cp.brokerUrl, { clientId: id, username: id, password: pw.get(id)! });
      await c.publishAsync(deviceTopic(id, 'birth'), birthPayload(id), { qos: 1 });
      await c.endAsync();
    });
    for (;;) {
      const online = fleet.cp.ctx.db.prepare("SELECT COUNT(*) AS n FROM devices WHERE status = 'online'").get() as { n: number };
      if (online.n >= pw.size) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const registeredS = (performance.now() - t0) / 1000;
    const cpu1 = fleet.mosquitto ? brokerCpuSeconds(fleet.mosquitto.port) : null;
    console.log(
      `| ${KIND} | ${n} | ${C} | ${enrolledS.toFixed(1)} | ${registeredS.toFixed(1)} | ${(pw.size / enrolledS).toFixed(0)} | ${failed} | ${cpu0 !== null && cpu1 !== null ? (cpu1 - cpu0).toFixed(1) : 'n/a'} |`,
    );
  } finally {
    await fleet.stop();
  }
}

console.log(`machine: ${cpus().length}x ${cpus()[0]?.model ?? 'unknown CPU'}`);
console.log('| broker | devices | at once | all enrolled s | all registered s | enrollments/s | failed | broker CPU s |');
console.log('|---|---|---|---|---|---|---|---|');
for (const n of NS) await run(n);
