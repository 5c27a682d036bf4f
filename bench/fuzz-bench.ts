/**
 * Fuzz bench (issue 8): the fuzzer of test/adversarial/fuzz-schemas.test.ts at bench size, 100,000 cases per broker by
 * default (half HTTP requests over every documented route, half MQTT payloads over every device channel, from a real
 * device login). Prints per broker: cases, status histogram, 5xx count, unhandled errors, MQTT messages counted,
 * RSS start/peak, whether the victim device's stored rows stayed untouched, and the time it took.
 *
 *   node --import tsx bench/fuzz-bench.ts [--cases 100000] [--broker embedded|mosquitto|both] [--seed 82026]
 */
import { cpus } from 'node:os';
import type { BrokerKind } from '../test/helpers/control-plane.ts';
import { runFuzz } from '../test/helpers/fuzz.ts';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
};
const CASES = Number(arg('cases', '100000'));
const SEED = Number(arg('seed', '82026'));
const brokers: BrokerKind[] = arg('broker', 'both') === 'both' ? ['embedded', 'mosquitto'] : [arg('broker', 'embedded') as BrokerKind];

console.log(`fuzz bench: ${CASES} cases per broker (seed ${SEED}); ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, node ${process.version}`);
const rows = [];
let failed = false;
for (const kind of brokers) {
  let last = 0;
  const r = await runFuzz({
    kind,
    httpCases: Math.ceil(CASES / 2),
    mqttCases: Math.floor(CASES / 2),
    seed: SEED,
    onProgress: (line) => {
      if (Date.now() - last > 10_000) {
        last = Date.now();
        console.error(line);
      }
    },
  });
  failed ||= r.fiveHundreds.length > 0 || r.unhandled.length > 0 || !r.healthyAfter || r.victimChanged !== null;
  for (const f of r.fiveHundreds.slice(0, 5)) console.error(`5xx: ${f.method} ${f.path} -> ${f.status} ${f.body}`);
  for (const u of r.unhandled.slice(0, 5)) console.error(`unhandled: ${u}`);
  rows.push({
    broker: kind,
    httpCases: r.httpCases,
    statuses: Object.entries(r.httpByStatus).map(([s, n]) => `${s}:${n}`).join(' '),
    fiveHundreds: r.fiveHundreds.length,
    unhandled: r.unhandled.length,
    mqtt: `${r.mqttCounted}/${r.mqttSent} counted`,
    reconnects: r.mqttReconnects,
    rssMiB: `${r.rssStartMiB} -> ${r.rssPeakMiB}`,
    victimUnchanged: r.victimChanged === null,
    healthyAfter: r.healthyAfter,
    seconds: r.seconds,
  });
}
console.table(rows);
process.exit(failed ? 1 : 0);
