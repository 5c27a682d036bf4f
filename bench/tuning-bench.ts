/**
 * A tuning of the demo model end to end on this machine: the demo's teacher/student/dataset (as
 * `edgefleet up --demo` trains it), one simulated canary per profile for three profiles (all on this
 * host's CPU, real onnxruntime), the profiles' own benchmark settings. Prints the per-profile candidate
 * table and the time of each phase. Not a test.
 *
 *   nice -n 10 node --import tsx bench/tuning-bench.ts [--quick]
 *
 * --quick: short benchmarks (the test settings) instead of the profiles' own.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { createStandardRooms } from '../control-plane/compose.ts';
import { silentLogger } from '../control-plane/log.ts';
import { startControlPlane } from '../control-plane/server.ts';
import type { TuningView } from '../shared/tuning.ts';
import { SIMULATED } from '../test/helpers/simulated-devices.ts';
import { formatTable } from './lib/table.ts';

const quick = process.argv.includes('--quick');
const PROFILES = ['generic-cpu', 'x86-64-vnni', 'armv82-dotprod'];
const dataDir = mkdtempSync(join(tmpdir(), 'ef-tuning-bench-'));
const rooms = createStandardRooms({
  dataDir,
  ui: false,
  // this machine is shared: its load stays above the profiles' idle gate, so the gate is opened here and said so
  tuningIdle: { maxLoadPerCore: 1000 },
  tuningTickMs: 250, tuningMaxConcurrentEvaluations: 1,
  ...(quick ? { tuningBenchmark: { threads: 1, warmupQueries: 10, minQueries: 100, minSeconds: 0, maxSeconds: 20, throughputBatchSize: 4, profileOps: true } } : {}),
});
const cp = await startControlPlane({ dataDir, httpHost: '127.0.0.1', httpPort: 0, broker: { kind: 'embedded', host: '127.0.0.1', port: 0 }, operatorToken: 'bench-token-0123456789abcdef', presenceTimeoutMs: 60_000, log: silentLogger, extensions: rooms.extensions });
const api = async (path: string, init: { method?: string; json?: unknown } = {}): Promise<any> => {
  const res = await fetch(cp.httpUrl + path, { method: init.method ?? 'GET', headers: { authorization: 'Bearer bench-token-0123456789abcdef', 'content-type': 'application/json' }, ...(init.json ? { body: JSON.stringify(init.json) } : {}) });
  return res.json();
};
const token = (await api('/enrollment-tokens', { method: 'POST', json: { maxUses: 10 } })).token as string;
const agents: AgentHandle[] = [];
for (const p of PROFILES) {
  const sim = SIMULATED.find((s) => s.expectProfile === p)!;
  agents.push(await startAgent({ brokerUrl: cp.brokerUrl, stateDir: mkdtempSync(join(tmpdir(), 'ef-tb-agent-')), enrollmentToken: token, deviceId: `bench-${sim.kind}`, facts: sim.facts, heartbeatIntervalMs: 5000 }));
}
for (;;) {
  if ((await api('/devices?status=online&limit=1')).total === PROFILES.length) break;
  await new Promise((r) => setTimeout(r, 200));
}
const cpuModel = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
const t0 = Date.now();
const created = await api('/tunings', {
  method: 'POST',
  json: {
    name: 'demo',
    teacher: { kind: 'zoo', arch: 'resnet-teacher', width: 0.5, depth: 1, epochs: 3 },
    student: { kind: 'zoo', arch: 'compact-cnn', width: 1 },
    dataset: { kind: 'fashion-mnist' },
    hyperparameters: { threads: 2, limits: { trainSamples: 8000, testSamples: 2000 }, evalSetSize: 500, training: { batchSize: 128, studentHardEpochs: 0 }, distill: { epochs: 3 }, qat: { epochs: 1 } },
  },
});
if (!created.id) throw new Error(JSON.stringify(created));
const marks: Record<string, number> = {};
let v: TuningView;
for (;;) {
  v = (await api(`/tunings/${created.id}`)) as TuningView;
  marks[v.state] ??= Date.now();
  if (['awaiting-approval', 'done', 'failed', 'cancelled'].includes(v.state)) break;
  await new Promise((r) => setTimeout(r, 500));
}
const end = Date.now();
const s = (a: number, b: number): string => `${((b - a) / 1000).toFixed(0)} s`;
console.log(`# tuning of the demo model on ${cpuModel} (${PROFILES.length} simulated canaries, one per profile, on this host), ${quick ? 'quick benchmarks' : "profiles' own benchmark settings"}`);
console.log(`state ${v.state}; total ${s(t0, end)}: training ${s(t0, marks['registering'] ?? end)}, registering+runtime checks ${s(marks['registering'] ?? end, marks['evaluating'] ?? end)}, evaluation on canaries ${s(marks['evaluating'] ?? end, end)}`);
if (v.error) console.log('error', v.error);
const pct = (x: number | null | undefined): string => (typeof x === 'number' ? `${(x * 100).toFixed(1)}%` : '-');
for (const p of PROFILES) {
  const rows = v.candidates.filter((c) => c.profileId === p);
  console.log(`\n## ${p}`);
  console.log(
    formatTable(
      ['candidate', 'kind', 'PyTorch acc', 'runtime acc (host)', 'device acc', 'device p50 ms', 'device p90 ms', 'peak RSS MiB', 'int8 share', 'status'],
      rows.map((c) => {
        const m = c.measurements[0];
        return [c.key, c.kind, pct(c.pytorchAccuracy), pct(c.runtimeAccuracy), pct(m?.accuracy), m ? m.p50.toFixed(3) : '-', m ? m.p90.toFixed(3) : '-', m ? (m.peakRssBytes / 2 ** 20).toFixed(0) : '-', pct(m?.integerKernelShare), c.status ?? '-'];
      }),
    ),
  );
  const d = v.decisions.find((x) => x.profileId === p);
  console.log(`choice: ${d?.chosen?.key ?? 'none'}: ${d?.reason ?? ''}`);
  for (const c of rows) if (c.reasons.length) console.log(`  ${c.key}: ${c.reasons.join('; ')}`);
}
for (const n of v.notes) console.log('note:', n);
await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
await cp.stop();
process.exit(0);
