import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeEvalSet } from '../shared/evalset.ts';
import { signedModelPayload, type ModelVersion } from '../shared/registry.ts';
import { verifyPayload } from '../shared/signing.ts';
import { RegistryInputError, RegistryIntegrityError, createRegistryExtension, toDeliverySource, type RegistryExtension } from '../control-plane/registry/index.ts';
import { DeliverySourceSchema } from '../shared/transfer.ts';
import { startTestFleet, type TestFleet } from './helpers/control-plane.ts';
import { sha256Hex } from '../shared/hash.ts';

/** Hand registration, signatures, versions, filters, verified downloads and tamper detection (no trainer). */

let fleet: TestFleet;
let ext: RegistryExtension;
let src = '';
let dataDir = '';
let onnx: Buffer;
let evalsetFile = '';
let refpredFile = '';

/** Enough of an ONNX file for the registry: a ModelProto starts with its ir_version field (0x08). */
const fakeOnnx = (n: number): Buffer => Buffer.concat([Buffer.from([0x08, 0x07]), randomBytes(n)]);

before(async () => {
  src = mkdtempSync(join(tmpdir(), 'ef-reg-src-'));
  onnx = fakeOnnx(5000);
  writeFileSync(join(src, 'model.onnx'), onnx);
  writeFileSync(join(src, 'fp32.onnx'), fakeOnnx(9000));
  writeFileSync(join(src, 'not-onnx.bin'), Buffer.from('hello'));
  const count = 20;
  evalsetFile = join(src, 'evalset.bin');
  writeFileSync(evalsetFile, encodeEvalSet({ count, channels: 1, height: 4, width: 4, numClasses: 10, labels: new Uint8Array(count).map((_, i) => i % 10), pixels: new Uint8Array(count * 16).map((_, i) => i % 256) }));
  refpredFile = join(src, 'refpred.bin');
  writeFileSync(refpredFile, new Uint8Array(count).map((_, i) => (i * 3) % 10));
  dataDir = mkdtempSync(join(tmpdir(), 'ef-reg-data-'));
  ext = createRegistryExtension({ dataDir });
  fleet = await startTestFleet('embedded', { dataDir, extensions: [ext] });
});

after(async () => {
  await fleet?.stop();
  if (src) rmSync(src, { recursive: true, force: true });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function register(json: Record<string, unknown>): Promise<{ status: number; body: any }> {
  return fleet.api('/models', { method: 'POST', json });
}

test('hand registration refuses bad input, naming the field', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ name: 'm', file: 'relative/model.onnx', kind: 'fp32' }, /file: must be an absolute path/],
    [{ name: 'm', file: join(src, 'missing.onnx'), kind: 'fp32' }, /file: .*missing\.onnx: no such file/],
    [{ name: 'm', file: join(src, 'not-onnx.bin'), kind: 'fp32' }, /file: .*does not look like an ONNX model/],
    [{ name: 'm', file: join(src, 'model.onnx'), kind: 'int8', profileId: 'no-such-profile' }, /profileId: unknown profile "no-such-profile"/],
    [{ name: 'm', file: join(src, 'model.onnx'), kind: 'int8' }, /recipeId: an int8 model needs profileId or recipeId/],
    [{ name: 'm', file: join(src, 'model.onnx'), kind: 'int4' }, /kind:/],
    [{ name: 'Bad Name', file: join(src, 'model.onnx'), kind: 'fp32' }, /name:/],
    [{ name: 'm', file: join(src, 'model.onnx'), kind: 'fp32', centralAccuracy: 1.5 }, /centralAccuracy:/],
    [{ name: 'm', file: join(src, 'model.onnx'), kind: 'fp32', companions: { evalset: join(src, 'model.onnx') } }, /companions\.evalset: .*not an eval set/],
    [{ name: 'm', file: join(src, 'model.onnx'), kind: 'fp32', companions: { evalset: evalsetFile, referencePredictions: join(src, 'not-onnx.bin') } }, /companions\.referencePredictions: .*5 predictions, the eval set 20/],
    [{ name: 'm', file: join(src, 'model.onnx'), kind: 'int8', profileId: 'x86-64-vnni', companions: { fp32Baseline: { modelId: 'nope-fp32', version: 1 } } }, /companions\.fp32Baseline: .*not in the registry/],
  ];
  for (const [body, re] of cases) {
    const r = await register(body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(r.body.message, re);
  }
  assert.equal((await fleet.api('/models')).body.total, 0, 'nothing half-registered');
});

let fp32: ModelVersion;
let int8: ModelVersion;

test('a hand-registered file becomes a signed version with companions; versions count up per model id', async () => {
  const f = await register({ name: 'hand', file: join(src, 'fp32.onnx'), kind: 'fp32', centralAccuracy: 0.9, companions: { evalset: evalsetFile } });
  assert.equal(f.status, 201, JSON.stringify(f.body));
  fp32 = f.body;
  assert.equal(fp32.id, 'hand-fp32');
  assert.equal(fp32.version, 1);

  const r = await register({
    name: 'hand',
    file: join(src, 'model.onnx'),
    kind: 'int8',
    profileId: 'x86-64-vnni',
    centralAccuracy: 0.87,
    companions: { evalset: evalsetFile, referencePredictions: refpredFile, fp32Baseline: { modelId: 'hand-fp32', version: 1 } },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  int8 = r.body;
  assert.equal(int8.id, 'hand-x86-64-vnni');
  assert.equal(int8.recipeId, 'x86-64-vnni');
  assert.equal(int8.profileId, 'x86-64-vnni');
  assert.equal(int8.kind, 'int8');
  assert.equal(int8.role, 'imported');
  assert.equal(int8.sha256, sha256Hex(onnx));
  assert.equal(int8.size, onnx.length);
  assert.equal(int8.metrics.accuracy, 0.87);
  assert.equal(int8.lineage.source, 'manual');
  assert.deepEqual(int8.lineage.parents, [{ id: 'hand-fp32', version: 1, role: 'imported' }]);
  assert.deepEqual(int8.companions.map((c) => c.role).sort(), ['evalset', 'fp32-baseline', 'reference-predictions']);
  assert.ok(int8.filePath.startsWith(join(dataDir, 'registry', 'hand-x86-64-vnni', '1')), int8.filePath);
  assert.deepEqual(readFileSync(int8.filePath), onnx, 'copied into the registry');

  const key = (await fleet.api('/keys/model-signing')).body.publicKeyPem as string;
  assert.ok(verifyPayload(signedModelPayload(int8), int8.signature, key), 'signature verifies with GET /keys/model-signing');
  assert.equal(verifyPayload({ ...signedModelPayload(int8), profileId: 'jetson-trt-int8' }, int8.signature, key), false, 'the signature covers the profile');

  const again = await register({ name: 'hand', file: join(src, 'model.onnx'), kind: 'int8', profileId: 'x86-64-vnni' });
  assert.equal(again.status, 201);
  assert.equal(again.body.version, 2);
  assert.equal(again.body.id, 'hand-x86-64-vnni');
});

test('GET /models filters; GET /models/:id lists versions or one with ?version=', async () => {
  const all = await fleet.api('/models');
  assert.equal(all.body.total, 3);
  assert.deepEqual((await fleet.api('/models?kind=fp32')).body.items.map((m: ModelVersion) => m.id), ['hand-fp32']);
  assert.equal((await fleet.api('/models?profile=x86-64-vnni')).body.total, 2);
  assert.equal((await fleet.api('/models?recipe=x86-64-vnni&kind=int8')).body.total, 2);
  assert.equal((await fleet.api('/models?profile=jetson-trt-int8')).body.total, 0);
  assert.equal((await fleet.api('/models?kind=int4')).status, 400);

  const one = await fleet.api('/models/hand-x86-64-vnni');
  assert.equal(one.status, 200);
  assert.deepEqual(one.body.versions.map((v: ModelVersion) => v.version), [2, 1]);
  assert.equal(one.body.latestVersion, 2);
  const v1 = await fleet.api('/models/hand-x86-64-vnni?version=1');
  assert.equal(v1.body.version, 1);
  assert.equal((await fleet.api('/models/hand-x86-64-vnni?version=9')).status, 404);
  assert.equal((await fleet.api('/models/nope')).status, 404);

  const paths = Object.keys((await fleet.api('/openapi.json', { auth: null })).body.paths);
  for (const p of ['/models', '/models/{id}', '/models/{id}/versions/{version}/artifact', '/models/{id}/versions/{version}/verify']) assert.ok(paths.includes(p), p);
});

test('the artifact downloads byte-identical with its sha256; companions too', async () => {
  const res = await fetch(`${fleet.cp.httpUrl}/models/hand-x86-64-vnni/versions/1/artifact`, { headers: { authorization: `Bearer ${fleet.token}` } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-edgefleet-sha256'), int8.sha256);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), onnx);
  const ev = await fetch(`${fleet.cp.httpUrl}/models/hand-x86-64-vnni/versions/1/companions/evalset`, { headers: { authorization: `Bearer ${fleet.token}` } });
  assert.equal(ev.status, 200);
  assert.deepEqual(Buffer.from(await ev.arrayBuffer()), readFileSync(evalsetFile));
  assert.equal((await fleet.api('/models/hand-x86-64-vnni/versions/1/companions/weights')).status, 400);
  assert.equal((await fleet.api('/models/hand-x86-64-vnni/versions/x/artifact')).status, 400);
  assert.equal((await fleet.api('/models/hand-x86-64-vnni/versions/1/artifact', { auth: null })).status, 401);
});

test('the service API: get, latestFor, delivery source (checked, in the shape delivery accepts)', async () => {
  const r = ext.registry;
  assert.equal(r.get('hand-x86-64-vnni')?.version, 2);
  assert.equal(r.get('hand-x86-64-vnni', 1)?.sha256, int8.sha256);
  assert.equal(r.get('nope'), null);
  assert.equal(r.latestFor('x86-64-vnni')?.version, 2);
  assert.equal(r.latestFor('x86-64-vnni', 'other'), null);
  assert.equal(r.latestFor('jetson-trt-int8'), null);
  const d = DeliverySourceSchema.parse(await r.deliverySource('hand-x86-64-vnni', 1));
  assert.equal(d.modelId, 'hand-x86-64-vnni');
  assert.equal(d.version, 1);
  assert.equal(d.profileId, 'x86-64-vnni');
  assert.equal(d.recipeId, 'x86-64-vnni');
  assert.equal(d.kind, 'int8');
  assert.equal(d.centralAccuracy, 0.87);
  assert.deepEqual(readFileSync(d.modelPath), onnx);
  assert.equal(d.companions.find((c) => c.role === 'fp32-baseline')?.path, fp32.filePath);
  assert.deepEqual(readFileSync(d.companions.find((c) => c.role === 'reference-predictions')!.path), readFileSync(refpredFile));
  assert.deepEqual(toDeliverySource(r.get('hand-x86-64-vnni', 1)!), d, 'the unchecked conversion gives the same source');

  // an fp32 model is delivered to a profile named by the caller, with that profile's recipe
  await assert.rejects(r.deliverySource('hand-fp32', 1), (e: unknown) => e instanceof RegistryInputError && e.field === 'profileId');
  const f = DeliverySourceSchema.parse(await r.deliverySource('hand-fp32', 1, 'generic-cpu'));
  assert.deepEqual([f.profileId, f.recipeId, f.kind], ['generic-cpu', 'generic-cpu', 'fp32']);
  await assert.rejects(r.deliverySource('hand-x86-64-vnni', 1, 'jetson-trt-int8'), /built for profile x86-64-vnni, not jetson-trt-int8/);
});

test('a tampered file is reported by verify and refused by download; the registry survives a restart', async () => {
  const ok = await fleet.api('/models/hand-x86-64-vnni/versions/1/verify');
  assert.equal(ok.status, 200);
  assert.equal(ok.body.ok, true, JSON.stringify(ok.body));
  assert.equal(ok.body.signature.ok, true);

  appendFileSync(int8.filePath, Buffer.from([0]));
  const bad = await fleet.api('/models/hand-x86-64-vnni/versions/1/verify');
  assert.equal(bad.body.ok, false);
  assert.equal(bad.body.file.ok, false);
  assert.equal(bad.body.file.expectedSha256, int8.sha256);
  assert.notEqual(bad.body.file.actualSha256, int8.sha256);
  assert.equal(bad.body.signature.ok, true, 'the record itself is intact');
  assert.match(bad.body.problems.join('\n'), /model file changed on disk/);
  const dl = await fleet.api('/models/hand-x86-64-vnni/versions/1/artifact');
  assert.equal(dl.status, 409);
  assert.equal(dl.body.error, 'integrity-failure');
  await assert.rejects(ext.registry.deliverySource('hand-x86-64-vnni', 1), (e: unknown) => e instanceof RegistryIntegrityError && /changed on disk/.test(e.message));

  // a tampered companion is reported too, and that companion is not served
  const ref = int8.companions.find((c) => c.role === 'reference-predictions')!;
  writeFileSync(ref.path, Buffer.alloc(20, 9));
  const v = await fleet.api('/models/hand-x86-64-vnni/versions/1/verify');
  assert.equal(v.body.companions.find((c: { role: string }) => c.role === 'reference-predictions').ok, false);
  assert.equal((await fleet.api('/models/hand-x86-64-vnni/versions/1/companions/reference-predictions')).status, 409);

  // the untouched version 2 still serves, before and after a restart (same key, same rows)
  await fleet.restartControlPlane();
  const v2 = await fleet.api('/models/hand-x86-64-vnni/versions/2/verify');
  assert.equal(v2.body.ok, true, JSON.stringify(v2.body));
  assert.equal((await fleet.api('/models/hand-x86-64-vnni/versions/2/artifact')).status, 200);
  assert.equal((await fleet.api('/models/hand-x86-64-vnni/versions/1/artifact')).status, 409);
});
