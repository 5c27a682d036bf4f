import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { argmaxRows, evalSetBatch, parseEvalSet } from '../shared/evalset.ts';
import { ortSessionOptions } from '../shared/ort-session.ts';
import type { ModelVersion } from '../shared/registry.ts';
import { createRegistryExtension } from '../control-plane/registry/index.ts';
import { hostCpu, parseHostCpu } from '../control-plane/registry/host-cpu.ts';
import { startTestFleet, type TestFleet } from './helpers/control-plane.ts';
import { makeRuntimeCheckModels, type RuntimeCheckModels } from './helpers/runtime-check-models.ts';
import { hostKernelFacts } from '../agent/benchmark/host-kernels.ts';
import { avx2EmulationAvailable, runAvx2Node } from './helpers/x86-avx2.ts';

/** Central runtime check: every registered model runs in onnxruntime here before it is registered. */

let fleet: TestFleet;
let src = '';
let models: RuntimeCheckModels | null = null;

before(async () => {
  src = mkdtempSync(join(tmpdir(), 'ef-rtcheck-'));
  models = makeRuntimeCheckModels(src);
  fleet = await startTestFleet('embedded', {}, (dataDir) => [createRegistryExtension({ dataDir })]);
});

after(async () => {
  await fleet?.stop();
  if (src) rmSync(src, { recursive: true, force: true });
});

async function register(name: string, file: string, refpred: string): Promise<ModelVersion> {
  const r = await fleet.api('/models', { method: 'POST', json: { name, file, kind: 'int8', profileId: 'generic-cpu', companions: { evalset: models!.evalSet, referencePredictions: refpred } } });
  assert.equal(r.status, 201, r.text);
  const got = await fleet.api(`/models/${r.body.id}?version=${r.body.version}`);
  assert.equal(got.status, 200);
  return got.body as ModelVersion;
}

/** Accuracy of a registered file recomputed here, in this process, at the agent's session settings. */
async function recompute(path: string): Promise<{ accuracy: number; agreement: number }> {
  const ev = parseEvalSet(readFileSync(models!.evalSet));
  assert.ok(ev.ok);
  const e = ev.value;
  const s = await ort.InferenceSession.create(path, ortSessionOptions(1, hostKernelFacts()));
  let correct = 0;
  for (let i = 0; i < e.count; i++) {
    const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', evalSetBatch(e, i, 1), [1, 1, 4, 4]) });
    if (argmaxRows(out[s.outputNames[0]!]!.data as Float32Array, e.numClasses)[0] === e.labels[i]) correct++;
  }
  await s.release();
  // labels are the exact model's top-1, so agreement with the reference equals accuracy here
  return { accuracy: correct / e.count, agreement: correct / e.count };
}

const host = hostCpu();
/** The one host class whose int8 kernels saturate u8×s8 pair sums (vpmaddubsw): x86 with AVX2 and no VNNI. */
const saturatesHere = host.arch === 'x64' && host.isaFlags.includes('avx2') && !host.isaFlags.some((f) => f.includes('vnni'));

test('host CPU: model name and the ISA flags that pick the int8 kernels, from /proc/cpuinfo', () => {
  const x86 = parseHostCpu('processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_1 avx avx2 fma bmi2\n', 'fallback', 'x64');
  assert.deepEqual(x86, { model: 'AMD EPYC 7B13', arch: 'x64', isaFlags: ['sse4_1', 'avx', 'avx2', 'fma'], label: 'AMD EPYC 7B13 (sse4_1 avx avx2 fma, no VNNI)' });
  const vnni = parseHostCpu('model name : Xeon\nflags : avx2 avx512f avx512_vnni\n', 'fallback', 'x64');
  assert.equal(vnni.label, 'Xeon (avx2 avx512f avx512_vnni)');
  const arm = parseHostCpu('processor : 0\nFeatures : fp asimd asimddp sve\nCPU part : 0xd0c\n', 'Neoverse', 'arm64');
  assert.deepEqual(arm.isaFlags, ['asimd', 'asimddp', 'sve']);
  assert.equal(arm.model, 'ARM CPU part 0xd0c');
  assert.equal(parseHostCpu('', 'Apple M2', 'arm64').label, 'Apple M2 (no kernel-relevant ISA flags read)');
});

test('a model the host kernels compute faithfully is not flagged; its stored runtime accuracy equals a recomputation', { skip: !models && 'no numpy/onnx in /usr/bin/python3' }, async () => {
  const m = await register('reduced', models!.reduced, models!.refpred('reduced'));
  const rt = m.metrics.runtime;
  assert.ok(rt, 'a model with an eval set is runtime-checked');
  assert.equal(rt.engine, 'onnxruntime-node');
  assert.equal(rt.graphOptimizationLevel, 'all');
  assert.equal(rt.evaluated, 200);
  assert.deepEqual(rt.host, host);
  assert.equal(rt.flagged, false, rt.reason ?? '');
  assert.equal(rt.threshold, 0.99);
  const again = await recompute(m.filePath);
  assert.equal(rt.accuracy, again.accuracy);
  assert.equal(rt.agreement, 1);
});

test(`full 8-bit weights whose u8×s8 pair sums pass int16: exact on this host at the agent's settings (${saturatesHere ? 'AVX2 without VNNI: U8U8 remedy on' : 'no saturating kernel'})`, { skip: !models && 'no numpy/onnx in /usr/bin/python3' }, async () => {
  const m = await register('saturating', models!.saturating, models!.refpred('saturating'));
  const rt = m.metrics.runtime!;
  const again = await recompute(m.filePath);
  assert.equal(rt.accuracy, again.accuracy, 'stored runtime accuracy = recomputed');
  assert.equal(rt.u8u8Remedy, saturatesHere);
  assert.equal(rt.flagged, false, rt.reason ?? '');
  assert.equal(rt.agreement, 1);
  // PyTorch's number is kept apart from the runtime's
  assert.equal(m.metrics.accuracy, null, 'hand registration gave no PyTorch accuracy');
});

const avx2 = avx2EmulationAvailable();
test('on an emulated AVX2 CPU without VNNI (qemu Haswell): full 8-bit weights saturate on the raw kernels, are exact with the agent\'s U8U8 remedy; 7-bit weights are exact either way', { skip: (!models && 'no numpy/onnx in /usr/bin/python3') || (!avx2.ok && avx2.reason) }, async () => {
  const script = join(import.meta.dirname, 'helpers', 'ort-agree.mjs');
  const agreeOn = async (name: 'saturating' | 'reduced', opts: object): Promise<number> => {
    const file = name === 'saturating' ? models!.saturating : models!.reduced;
    const r = await runAvx2Node([script, JSON.stringify(opts), file, models!.evalSet, models!.refpred(name)]);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { agreement: number }).agreement;
  };
  const raw = ortSessionOptions(1, { u8s8Saturates: false });
  const agent = ortSessionOptions(1, { u8s8Saturates: true });
  assert.ok(agent.extra, 'the agent\'s settings on such a CPU carry the remedy');
  const sat = await agreeOn('saturating', raw);
  assert.ok(sat < 0.99, `raw AVX2 kernels: agreement ${sat} (vpmaddubsw saturates the 127-weight pairs)`);
  assert.equal(await agreeOn('saturating', agent), 1);
  assert.equal(await agreeOn('reduced', raw), 1);
  assert.equal(await agreeOn('reduced', agent), 1);
});

test('a deliberately wrong weight scale is flagged on every CPU', { skip: !models && 'no numpy/onnx in /usr/bin/python3' }, async () => {
  const m = await register('wrong-scale', models!.wrongScale, models!.refpred('wrong-scale'));
  const rt = m.metrics.runtime!;
  assert.equal(rt.flagged, true);
  assert.equal(rt.agreement, (await recompute(m.filePath)).agreement);
  assert.ok(rt.agreement! < 0.6, String(rt.agreement));
});

test('a file onnxruntime cannot load is registered flagged, with the reason', async () => {
  const bogus = join(src, 'bogus.onnx');
  writeFileSync(bogus, Buffer.from([0x08, 0x07, 1, 2, 3, 4, 5, 6, 7, 8]));
  const r = await fleet.api('/models', { method: 'POST', json: { name: 'bogus', file: bogus, kind: 'fp32', companions: { evalset: models?.evalSet ?? bogus } } });
  if (!models) return;
  assert.equal(r.status, 201, r.text);
  const rt = (r.body as ModelVersion).metrics.runtime!;
  assert.equal(rt.flagged, true);
  assert.equal(rt.accuracy, null);
  assert.match(rt.reason!, /onnxruntime cannot load the model/);
});
