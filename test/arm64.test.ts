import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { arm64Available, runArm64Node } from './helpers/arm64.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const available = arm64Available();
const skip = available.ok ? false : available.reason;

/** c = a + b over float32[2]: the smallest ONNX model (opset 13, IR 7), serialized with Debian's python3-onnx. */
const ADD_MODEL_BASE64 = 'CAc6RgoOCgFhCgFiEgFjIgNBZGQSAWdaDwoBYRIKCggIARIECgIIAloPCgFiEgoKCAgBEgQKAggCYg8KAWMSCgoICAESBAoCCAJCBAoAEA0=';

// Loads onnxruntime-node as the project ships it; its loader picks bin/napi-v*/linux/<process.arch>, and
// /proc/self/maps (emulated by qemu for the guest) shows which shared objects were really mapped.
const ORT_SCRIPT = `
const ort = require(process.argv[2]);
(async () => {
  const s = await ort.InferenceSession.create(Buffer.from(process.argv[3], 'base64'));
  const r = await s.run({ a: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]), b: new ort.Tensor('float32', Float32Array.from([10, 20]), [2]) });
  const libs = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/).pop()).filter((p) => p && p.includes('onnxruntime'));
  console.log(JSON.stringify({ arch: process.arch, c: Array.from(r.c.data), libs: [...new Set(libs)] }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('arm64 under qemu-user', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-arm64-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the arm64 node reports arm64 and sees the ARM cpuinfo', async () => {
    const r = await runArm64Node(['-e', "console.log(process.arch + ' ' + /asimddp/.test(require('fs').readFileSync('/proc/cpuinfo', 'utf8')))"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'arm64 true');
  });

  test("onnxruntime-node's own arm64 binary loads and runs a model", async () => {
    const script = join(dir, 'ort.cjs');
    writeFileSync(script, ORT_SCRIPT);
    const r = await runArm64Node([script, join(ROOT, 'node_modules', 'onnxruntime-node'), ADD_MODEL_BASE64]);
    assert.equal(r.status, 0, `status ${r.status} signal ${r.signal}: ${r.stderr}`);
    const out = JSON.parse(r.stdout.trim()) as { arch: string; c: number[]; libs: string[] };
    assert.equal(out.arch, 'arm64');
    assert.deepEqual(out.c, [11, 22]);
    assert.ok(out.libs.some((l) => /napi-v\d+\/linux\/arm64\/onnxruntime_binding\.node$/.test(l)), `arm64 binding not mapped: ${out.libs.join(', ')}`);
    assert.ok(!out.libs.some((l) => l.includes('/x64/')), `an x64 library was mapped: ${out.libs.join(', ')}`);
  });
});
