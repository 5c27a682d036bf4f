import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { signedModelPayload, type Companion } from '../../shared/registry.ts';
import { signPayload } from '../../shared/signing.ts';
import type { Db } from '../store/db.ts';
import type { Draft } from './records.ts';
import type { RegistryStore, StoredModelVersion } from './registry-store.ts';

export type PlacementDeps = { db: Db; store: RegistryStore; privateKeyPem: string; root: string; dataDir: string };

/**
 * Places drafts as versions in one transaction (all or none): each takes the next version number,
 * its staged folder moves to `<root>/<id>/<version>/`, its record is signed and inserted. Folders
 * moved in are removed again if anything fails. Drafts come parents first.
 */
export function placeVersions(deps: PlacementDeps, drafts: Draft[]): StoredModelVersion[] {
  const moved: string[] = [];
  const placed = new Map<string, StoredModelVersion>();
  try {
    deps.db.transaction(() => {
      for (const d of drafts) {
        const parent = d.parent === null ? null : 'existing' in d.parent ? d.parent.existing : placed.get(d.parent.key);
        if (d.parent && !parent) throw new Error(`draft ${d.key}: its parent ${JSON.stringify(d.parent)} was not placed before it`);
        placed.set(d.key, placeOne(deps, d, parent ?? null, moved));
      }
    })();
  } catch (e) {
    for (const dir of moved) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return drafts.map((d) => placed.get(d.key)!);
}

function placeOne(deps: PlacementDeps, d: Draft, parent: StoredModelVersion | null, moved: string[]): StoredModelVersion {
  const version = deps.store.nextVersion(d.id);
  const finalDir = join(deps.root, d.id, String(version));
  // a folder left by a crash between the move and the commit holds nothing the database knows
  if (existsSync(finalDir)) rmSync(finalDir, { recursive: true, force: true });
  mkdirSync(dirname(finalDir), { recursive: true });
  renameSync(d.stagedDir, finalDir);
  moved.push(finalDir);
  const rel = (name: string): string => relative(deps.dataDir, join(finalDir, name));
  const model = d.files.find((f) => f.name === 'model.onnx');
  if (!model) throw new Error(`draft ${d.key} has no model.onnx`);
  const companions: Companion[] = [];
  const baseline = d.parentIsBaseline ? parent : null;
  if (baseline) companions.push({ role: 'fp32-baseline', path: baseline.filePath, sha256: baseline.sha256, size: baseline.size, modelId: baseline.id, version: baseline.version });
  for (const f of d.files) {
    if (f.name === 'evalset.bin') companions.push({ role: 'evalset', path: rel(f.name), sha256: f.sha256, size: f.size });
    if (f.name === 'reference-predictions.bin') companions.push({ role: 'reference-predictions', path: rel(f.name), sha256: f.sha256, size: f.size });
  }
  const unsigned = { id: d.id, version, sha256: model.sha256, size: model.size, profileId: d.profileId, recipeId: d.recipeId, kind: d.kind };
  const m: StoredModelVersion = {
    ...unsigned,
    name: d.name,
    role: d.role,
    filePath: rel('model.onnx'),
    jobId: d.jobId,
    lineage: { ...d.lineage, parents: parent ? [{ id: parent.id, version: parent.version, role: parent.role }] : [] },
    metrics: d.metrics,
    diagnostics: d.diagnostics,
    companions,
    signature: signPayload(signedModelPayload(unsigned), deps.privateKeyPem),
    createdAt: d.createdAt,
  };
  deps.store.insert(m);
  return m;
}
