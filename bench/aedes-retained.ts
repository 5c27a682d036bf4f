/**
 * Per-SUBSCRIBE cost of retained-message lookup in the embedded broker, at 1k / 5k / 10k devices that
 * each keep one retained `status`: aedes' own memory persistence (scans every retained topic per
 * filter) next to the topic-indexed one the control plane uses (control-plane/broker/indexed-persistence.ts),
 * same run, same process. Each "SUBSCRIBE" is what aedes runs after a device's SUBSCRIBE: the retained
 * stream for its two filters (`cmd`, `xfer/data`), drained.
 *
 *   nice -n 10 node --import tsx bench/aedes-retained.ts      # BENCH_NS=1000,5000,10000
 */
import aedesPersistence from 'aedes-persistence';
import { Aedes } from 'aedes';
import type { Readable } from 'node:stream';
import { indexedMemoryPersistence } from '../control-plane/broker/indexed-persistence.ts';
import { deviceTopic } from '../shared/topics.ts';
import { machineName } from './lib/machine.ts';
import { formatTable } from './lib/table.ts';

type Persistence = { storeRetained(p: unknown): Promise<void>; createRetainedStreamCombi(patterns: string[]): Readable };
const NS = (process.env['BENCH_NS'] ?? '1000,5000,10000').split(',').map(Number);

async function perSubscribeMs(p: Persistence, n: number): Promise<number> {
  for (let i = 0; i < n; i++) {
    const topic = deviceTopic(`dev-${i}`, 'status');
    await p.storeRetained({ cmd: 'publish', topic, payload: Buffer.from(`{"v":1,"state":"online","ts":${i}}`), qos: 1, retain: true });
  }
  const rounds = Math.max(50, Math.round(200_000 / n));
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    const id = `dev-${r % n}`;
    let got = 0;
    for await (const _ of p.createRetainedStreamCombi([deviceTopic(id, 'cmd'), deviceTopic(id, 'xfer/data')])) got++;
    if (got !== 0) throw new Error('a device filter matched a retained status');
  }
  return (performance.now() - t0) / rounds;
}

const rows: (string | number)[][] = [];
// warm both code paths up first so the first row does not measure the JIT
{
  const { persistence } = indexedMemoryPersistence();
  await Aedes.createBroker({ persistence }).then((b) => b.close());
  await perSubscribeMs(persistence as Persistence, 500);
}
for (const n of NS) {
  // aedes wires a persistence to a broker in setup(); give each its own broker so both run as in production
  const stock = (aedesPersistence as unknown as () => Persistence)();
  await Aedes.createBroker({ persistence: stock }).then((b) => b.close());
  const { persistence } = indexedMemoryPersistence();
  await Aedes.createBroker({ persistence }).then((b) => b.close());
  const before = await perSubscribeMs(stock, n);
  const after = await perSubscribeMs(persistence as Persistence, n);
  rows.push([n, before.toFixed(3), after.toFixed(4), `${(before / after).toFixed(0)}x`]);
}
console.log(`\nRetained lookup per device SUBSCRIBE (two literal filters), ${machineName()}\n`);
console.log(formatTable(['retained statuses', 'aedes-persistence ms', 'indexed ms', 'speed-up'], rows));
