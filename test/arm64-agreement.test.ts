import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { buildAgentTarball } from '../scripts/release-agent.ts';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { WorkerMessage, WorkerRequest, WorkerResult } from '../agent/benchmark/types.ts';
import { hostCpu } from '../control-plane/registry/host-cpu.ts';
import { DEFAULT_RUNTIME_AGREEMENT_THRESHOLD, runRuntimeEval, runtimeCheck } from '../control-plane/registry/runtime-eval.ts';
import { loadProfilesFromDir } from '../device-profiles/load.ts';
import { parseEvalSet } from '../shared/evalset.ts';
import { arm64Available, collect, spawnArm64Node } from './helpers/arm64.ts';
import { SYSTEM_PYTHON } from './helpers/models.ts';

/**
 * ARM64 in CI: the armv82-dotprod recipe's int8 model, run by the agent's own benchmark worker on the arm64
 * Node under qemu-aarch64 (`-cpu max`: SDOT/UDOT, ARMv8.2 cpuinfo) with onnxruntime-node's arm64 binary, agrees
 * with PyTorch as much as the registry's central check on this host claims (>= 99%). VNNI stays a gap unless
 * the host has it natively: qemu cannot run AVX-512.
 */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const available = arm64Available();
const skip = available.ok ? false : available.reason;

describe('armv82-dotprod on emulated ARMv8.2 (agent benchmark worker, arm64 onnxruntime)', { skip }, () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ef-arm64-agree-'));
    const loaded = loadProfilesFromDir();
    assert.ok(loaded.ok);
    const recipe = loaded.value.find((p) => p.id === 'armv82-dotprod')!.recipe;
    // all layers int8, no outlier: 300 Fashion-MNIST test images, PyTorch's top-1 as reference
    execFileSync(SYSTEM_PYTHON, [join(ROOT, 'test', 'helpers', 'mixed-precision-model.py'), dir, JSON.stringify(recipe), '', '-1'], { timeout: 600_000, stdio: ['ignore', 'ignore', 'pipe'] });
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the agent worker on arm64 agrees with PyTorch at least as the registry claims for the recipe', async () => {
    const model = join(dir, 'model.onnx');
    const evalsetPath = join(dir, 'evalset.bin');
    const refPath = join(dir, 'model.refpred.bin');
    // what the registry stores: the central check on this host
    const host = hostCpu();
    const outcome = (await runRuntimeEval({ threads: 1, models: [{ key: 'm', modelPath: model, evalsetPath, referencePredictionsPath: refPath }] }, { timeoutMs: 300_000 })).get('m')!;
    const claimed = runtimeCheck(outcome, { host, threshold: DEFAULT_RUNTIME_AGREEMENT_THRESHOLD, threads: 1, measuredAt: Date.now() });
    assert.equal(claimed.flagged, false, claimed.reason ?? '');
    assert.equal(claimed.evaluated, 300);

    const parsed = parseEvalSet(readFileSync(evalsetPath));
    assert.ok(parsed.ok);
    const request: WorkerRequest = {
      modelPath: model,
      settings: { threads: 1, warmupQueries: 1, minQueries: 3, minSeconds: 0, maxSeconds: 60, throughputBatchSize: 1, profileOps: false },
      evalSet: parsed.value,
      referencePredictions: new Uint8Array(readFileSync(refPath)),
      inputShape: null,
      profileDir: dir,
    };
    // the agent as devices run it: the release bundle (no tsx under emulation) with onnxruntime-node's arm64 binary
    const tarball = await buildAgentTarball('linux-arm64', join(dir, 'dist'));
    const dest = join(dir, 'agent');
    mkdirSync(dest, { recursive: true });
    assert.equal((await collect(spawn('tar', ['-xzf', tarball, '-C', dest]))).status, 0);
    const agentDir = join(dest, readdirSync(dest)[0]!);
    const child = spawnArm64Node([join(agentDir, 'lib', 'worker-entry.mjs')], { ipc: true, env: { PATH: process.env.PATH ?? '' } });
    let result: WorkerResult | null = null;
    let error = '';
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'result') (result = m.result), child.disconnect();
      else if (m.type === 'error') (error = m.message), child.disconnect();
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // wait for the worker's exit, not 'close': under qemu in the private mount namespace its pipes were seen to stay
    // open after a clean exit (exit 0, IPC disconnected), so 'close' never came and the test hung
    const done = await new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 900_000);
      child.once('exit', (status, signal) => {
        clearTimeout(timer);
        resolve({ status, signal });
      });
      child.send({ type: 'run', request });
    });
    child.stdout?.destroy();
    child.stderr?.destroy();
    assert.ok(result, `worker gave no result (status ${done.status}, signal ${done.signal}): ${error} ${stderr.slice(-1000)}`);
    const r = result as WorkerResult;
    assert.equal(r.evaluated, 300);
    console.log(`# armv82-dotprod: agreement on emulated ARMv8.2 ${r.agreement}, registry's claim on ${host.label} ${claimed.agreement}`);
    assert.ok(r.agreement! >= DEFAULT_RUNTIME_AGREEMENT_THRESHOLD, `arm64 agreement ${r.agreement}`);
    assert.ok(r.agreement! >= claimed.agreement! - 0.005, `arm64 agreement ${r.agreement} below the registry's claim ${claimed.agreement}`);
  });
});
