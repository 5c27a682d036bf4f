import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { WorkerMessage, WorkerRequest, WorkerResult } from '../agent/benchmark/types.ts';
import { loadProfilesFromDir } from '../device-profiles/load.ts';
import { DeviceFactsSchema } from '../shared/facts.ts';
import { matchProfile } from '../shared/matcher.ts';
import { buildAgentTarball } from '../scripts/release-agent.ts';
import { arm64Available, arm64NodeShim, collect, runInArm64Namespace, spawnArm64Node } from './helpers/arm64.ts';
import { makeDeliveryTestModels } from './helpers/models.ts';

const root = mkdtempSync(join(tmpdir(), 'ef-release-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A Raspberry Pi 5 (the same facts an RK3588's Cortex-A76 cores give): no arch here, that comes from the running node. */
const PI5_FACTS = {
  hostname: 'pi5',
  cpu: { manufacturer: 'ARM', brand: 'Cortex-A76', cores: 4, physicalCores: 4, flags: 'fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp'.split(' ') },
  deviceTreeModel: 'Raspberry Pi 5 Model B Rev 1.0',
};

async function unpack(target: 'linux-x64' | 'linux-arm64'): Promise<string> {
  const tarball = await buildAgentTarball(target, join(root, 'dist'));
  const dest = join(root, target);
  mkdirSync(dest, { recursive: true });
  const r = await collect(spawn('tar', ['-xzf', tarball, '-C', dest]));
  assert.equal(r.status, 0, r.stderr);
  const [top] = readdirSync(dest);
  return join(dest, top!);
}

/** A tarball must carry no TypeScript, no tsx/esbuild and only the target's onnxruntime binary. */
function assertPlainJsOnly(dir: string, os: string, arch: string): void {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk : (p: string) => files.push(p))(join(d, e.name));
  };
  walk(dir);
  const rel = files.map((f) => f.slice(dir.length + 1));
  assert.deepEqual(rel.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'no TypeScript sources');
  assert.deepEqual(rel.filter((f) => /node_modules\/(tsx|esbuild|@esbuild|better-sqlite3)\//.test(f)), [], 'no compiler, no better-sqlite3');
  const natives = rel.filter((f) => f.endsWith('.node'));
  assert.deepEqual(natives, [`node_modules/onnxruntime-node/bin/napi-v6/${os}/${arch}/onnxruntime_binding.node`]);
}

/** Drives the bundle's benchmark child process the way agent/benchmark/runner.ts does. */
function benchmarkThrough(child: ChildProcess, request: WorkerRequest): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'result') resolve(m.result);
      else if (m.type === 'error') reject(new Error(m.message));
    });
    child.once('exit', (code, signal) => reject(new Error(`benchmark child exited (${signal ?? code}) before reporting: ${stderr}`)));
    child.send({ type: 'run', request });
  });
}

const SETTINGS = { threads: 1, warmupQueries: 2, minQueries: 5, minSeconds: 0, maxSeconds: 30, throughputBatchSize: 2, profileOps: true };

describe('agent release tarball (plain JavaScript, Node 20 only)', () => {
  const profiles = loadProfilesFromDir();
  const expected = (facts: unknown): string => {
    assert.ok(profiles.ok);
    return matchProfile(DeviceFactsSchema.parse(facts), profiles.value)?.profileId ?? 'none';
  };
  let models: ReturnType<typeof makeDeliveryTestModels>;
  before(() => {
    models = makeDeliveryTestModels(mkdtempSync(join(root, 'models-')));
  });

  test('linux-x64: the launcher probes natively, --facts included, and the bundled benchmark child runs a model', async () => {
    const dir = await unpack('linux-x64');
    assertPlainJsOnly(dir, 'linux', 'x64');
    const launcher = join(dir, 'bin', 'edgefleet-agent');
    const env = { PATH: process.env.PATH ?? '', HOME: root };
    const plain = await collect(spawn(launcher, ['probe'], { env }));
    assert.equal(plain.status, 0, plain.stderr);
    const probed = JSON.parse(plain.stdout) as { facts: { arch: string }; profile: { profileId: string } };
    assert.equal(probed.facts.arch, 'x64');
    assert.equal(probed.profile.profileId, expected(probed.facts), "the bundle's built-in profiles match like the source's");

    const vnni = join(root, 'vnni.json');
    writeFileSync(vnni, JSON.stringify({ cpu: { flags: ['avx2', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni'] } }));
    const posed = await collect(spawn(launcher, ['probe', '--facts', vnni], { env }));
    assert.equal(posed.status, 0, posed.stderr);
    assert.equal((JSON.parse(posed.stdout) as { profile: { profileId: string } }).profile.profileId, 'x86-64-vnni');

    if (!models) return;
    const child = fork(join(dir, 'lib', 'worker-entry.mjs'), [], { serialization: 'advanced', execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    try {
      const r = await benchmarkThrough(child, { modelPath: models.int8, settings: SETTINGS, evalSet: null, referencePredictions: null, inputShape: null, profileDir: mkdtempSync(join(root, 'prof-')) });
      assert.ok(r.latencyMs.count >= SETTINGS.minQueries, `latency samples: ${r.latencyMs.count}`);
      assert.ok(r.latencyMs.p50 > 0 && r.latencyMs.p99 >= r.latencyMs.p50);
    } finally {
      child.kill('SIGKILL');
    }
  });

  const arm = arm64Available();
  test('linux-arm64 under qemu-aarch64-static: the launcher with an arm64 Node probes as armv82-dotprod, and its onnxruntime benchmarks', { skip: arm.ok ? false : arm.reason }, async () => {
    const dir = await unpack('linux-arm64');
    assertPlainJsOnly(dir, 'linux', 'arm64');
    const facts = join(root, 'pi5.json');
    writeFileSync(facts, JSON.stringify(PI5_FACTS));
    const env = { PATH: process.env.PATH ?? '', HOME: root, EDGEFLEET_NODE: arm64NodeShim() };
    const r = await runInArm64Namespace(join(dir, 'bin', 'edgefleet-agent'), ['probe', '--facts', facts], { env, timeoutMs: 180_000 });
    assert.equal(r.status, 0, `status ${r.status} signal ${r.signal}: ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { facts: { arch: string; platform: string }; profile: { profileId: string } };
    assert.equal(out.facts.arch, 'arm64', 'arch comes from the running (arm64) node, not from the facts file');
    assert.equal(out.facts.platform, 'linux');
    assert.equal(out.profile.profileId, 'armv82-dotprod');

    if (!models) return;
    // the benchmark child the agent forks: arm64 node + the tarball's arm64 onnxruntime binary, over Node IPC
    const child = spawnArm64Node([join(dir, 'lib', 'worker-entry.mjs')], { ipc: true, env: { PATH: process.env.PATH ?? '' } });
    try {
      const res = await benchmarkThrough(child, { modelPath: models.int8, settings: SETTINGS, evalSet: null, referencePredictions: null, inputShape: null, profileDir: mkdtempSync(join(root, 'prof-')) });
      assert.ok(res.latencyMs.count >= SETTINGS.minQueries, `latency samples: ${res.latencyMs.count}`);
      assert.ok(existsSync(join(dir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'arm64', 'libonnxruntime.so.1')));
    } finally {
      child.kill('SIGKILL');
    }
  });
});
