import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ModelStore } from '../../agent/delivery/model-store.ts';
import { PathEscapeError, pathInside } from '../../agent/delivery/store-paths.ts';
import { createStandardRooms } from '../../control-plane/compose.ts';
import type { ModelManifest } from '../../shared/messages.ts';
import { ModelManifestSchema } from '../../shared/messages.ts';
import { startTestFleet, type TestFleet } from '../helpers/control-plane.ts';

/**
 * Issue 8 item 10: POST /deliveries with modelId `..` put the model at `<stateDir>/7/` on the agent. Replayed at every
 * layer: the HTTP body, the signed manifest schema the agent parses, and the agent's model store itself (given a
 * manifest that skipped the schema), which refuses any path that leaves its folder.
 */
const TRAVERSALS = ['..', '.', '../x', 'a/../../b', '%2e%2e', '..%2f', 'a..b', '.hidden', 'A', 'x/y', '', 'con', 'edgefleet-control-plane'];

describe('model, device, transfer and rollout ids cannot leave their folder', () => {
  let fleet: TestFleet;
  before(async () => {
    fleet = await startTestFleet('embedded', {}, (dataDir) => createStandardRooms({ dataDir, ui: false }).extensions);
  });
  after(async () => fleet?.stop());

  test('POST /deliveries with a traversing or reserved modelId, deviceId or rolloutId is a 400 naming the field', async () => {
    const good = { deviceId: 'dev-1', source: { modelId: 'm-1', version: 7, profileId: 'generic-cpu', recipeId: 'generic-cpu', kind: 'int8', modelPath: '/tmp/x.onnx', centralAccuracy: null } };
    for (const bad of TRAVERSALS) {
      const r = await fleet.api('/deliveries', { method: 'POST', json: { ...good, source: { ...good.source, modelId: bad } } });
      assert.equal(r.status, 400, `modelId ${JSON.stringify(bad)}: ${r.text}`);
      assert.match(r.text, /modelId/);
      const d = await fleet.api('/deliveries', { method: 'POST', json: { ...good, deviceId: bad } });
      assert.equal(d.status, 400, `deviceId ${JSON.stringify(bad)}`);
      const ro = await fleet.api('/deliveries', { method: 'POST', json: { ...good, rolloutId: bad } });
      assert.equal(ro.status, 400, `rolloutId ${JSON.stringify(bad)}`);
    }
  });

  test('path ids in the API follow the id rule: 400 before any store is asked', async () => {
    for (const path of ['/devices/..%2f..%2fetc', '/devices/Dev-1', '/models/.x', '/models/m/versions/0x10/artifact', '/rollouts/.hidden', '/reports/models/a..b', '/transfers/a..b']) {
      const r = await fleet.api(path);
      assert.equal(r.status, 400, `${path}: ${r.text}`);
    }
    const del = await fleet.api('/enrollment-tokens/enroll-x', { method: 'DELETE' });
    assert.equal(del.status, 400, del.text);
  });

  test('the agent parses no manifest whose ids break the rule', () => {
    const m = { modelId: '..', version: 7, profileId: 'generic-cpu', recipeId: 'generic-cpu', kind: 'int8', sizeBytes: 1, chunkSize: 1024, sha256: 'a'.repeat(64), chunkSha256: ['a'.repeat(64)], transferId: '../../x', benchmark: { threads: 1, warmupQueries: 0, minQueries: 1, minSeconds: 0, maxSeconds: 1, throughputBatchSize: 1, profileOps: false }, runtime: 'onnxruntime-cpu', centralAccuracy: null, expiresAt: Date.now() + 1000, signature: 's' };
    const r = ModelManifestSchema.safeParse(m);
    assert.equal(r.success, false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    assert.ok(paths.includes('modelId') && paths.includes('transferId'), paths.join(', '));
  });

  test('the model store refuses a manifest that skipped the schema: nothing is written outside it', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ef-traversal-'));
    const store = new ModelStore(stateDir);
    const file = join(stateDir, 'incoming.onnx');
    writeFileSync(file, 'model');
    for (const modelId of TRAVERSALS) {
      const manifest = { modelId, version: 7 } as unknown as ModelManifest;
      assert.throws(() => store.install(manifest, { model: file }, Date.now()), PathEscapeError, JSON.stringify(modelId));
      assert.equal(store.get({ modelId, version: 7 }), null);
    }
    assert.throws(() => store.versionDir({ modelId: 'ok', version: -1 }), PathEscapeError);
    assert.throws(() => store.versionDir({ modelId: 'ok', version: 1.5 }), PathEscapeError);
    assert.deepEqual(readdirSync(stateDir).sort(), ['incoming.onnx', 'models']);
    assert.equal(existsSync(join(stateDir, '7')), false, 'the reported attack wrote <stateDir>/7/');
    assert.deepEqual(readdirSync(join(stateDir, 'models')), []);
    // the prefix check holds on its own too
    assert.throws(() => pathInside(stateDir, 'model', 'ok', '..', '..', 'etc'), PathEscapeError);
    assert.equal(pathInside(stateDir, 'model', 'ok', '3'), join(stateDir, 'ok', '3'));
  });
});
