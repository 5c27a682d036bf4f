import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ModelManifestSchema, type ModelManifest, type ModelRef } from '../../shared/messages.ts';
import { PathEscapeError, pathInside } from './store-paths.ts';

export type CompanionRole = ModelManifest['companions'][number]['role'];

/** File names inside one installed version's folder. */
export const FILE_NAMES: Record<'model' | CompanionRole, string> = {
  model: 'model.onnx',
  'fp32-baseline': 'fp32-baseline.onnx',
  evalset: 'evalset.bin',
  'reference-predictions': 'reference-predictions.bin',
};

export type InstalledModel = { ref: ModelRef; dir: string; manifest: ModelManifest; installedAt: number };

type ActiveFile = { active: ModelRef | null; history: { modelId: string; version: number; at: number }[] };

const sameRef = (a: ModelRef | null, b: ModelRef | null): boolean => !!a && !!b && a.modelId === b.modelId && a.version === b.version;

/**
 * Installed models under `stateDir/models/<modelId>/<version>/`, each with its manifest; `active.json` names the active
 * one and the order of activations, so a rollback knows what "previous" means. Writes are rename-into-place.
 */
export class ModelStore {
  readonly root: string;

  constructor(
    stateDir: string,
    private readonly keepVersions = 3,
  ) {
    this.root = join(stateDir, 'models');
    mkdirSync(this.root, { recursive: true });
  }

  /** Throws PathEscapeError for an id that breaks the id rule or a version that is not a positive integer. */
  versionDir(ref: ModelRef): string {
    if (!Number.isSafeInteger(ref.version) || ref.version < 1) throw new PathEscapeError(`model version ${String(ref.version)} is not a positive integer`);
    return pathInside(this.root, 'model', ref.modelId, String(ref.version));
  }

  get(ref: ModelRef): InstalledModel | null {
    try {
      const dir = this.versionDir(ref);
      const raw = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { installedAt: number; manifest: unknown };
      const manifest = ModelManifestSchema.parse(raw.manifest);
      return { ref: { modelId: manifest.modelId, version: manifest.version }, dir, manifest, installedAt: raw.installedAt };
    } catch {
      return null;
    }
  }

  list(modelId: string): InstalledModel[] {
    let names: string[];
    try {
      names = readdirSync(pathInside(this.root, 'model', modelId));
    } catch {
      return [];
    }
    return names
      .filter((n) => /^\d+$/.test(n))
      .flatMap((n) => this.get({ modelId, version: Number(n) }) ?? [])
      .sort((a, b) => b.installedAt - a.installedAt || b.ref.version - a.ref.version);
  }

  /**
   * Moves verified files (same filesystem: the download folder is in the state folder too) into a staging folder,
   * then renames it into place. An existing folder of that version is replaced whole.
   */
  install(manifest: ModelManifest, files: Partial<Record<'model' | CompanionRole, string>>, now: number): InstalledModel {
    const ref = { modelId: manifest.modelId, version: manifest.version };
    const dir = this.versionDir(ref);
    mkdirSync(dirname(dir), { recursive: true });
    const staging = `${dirname(dir)}/.staging-${manifest.version}-${randomBytes(4).toString('hex')}`;
    mkdirSync(staging);
    for (const [role, path] of Object.entries(files)) renameSync(path, join(staging, FILE_NAMES[role as keyof typeof FILE_NAMES]));
    writeFileSync(join(staging, 'manifest.json'), JSON.stringify({ installedAt: now, manifest }));
    if (existsSync(dir)) {
      const trash = `${dirname(dir)}/.trash-${manifest.version}-${randomBytes(4).toString('hex')}`;
      renameSync(dir, trash);
      renameSync(staging, dir);
      rmSync(trash, { recursive: true, force: true });
    } else {
      renameSync(staging, dir);
    }
    return { ref, dir, manifest, installedAt: now };
  }

  file(m: InstalledModel, role: 'model' | CompanionRole): string | null {
    const p = join(m.dir, FILE_NAMES[role]);
    return existsSync(p) ? p : null;
  }

  private readActive(): ActiveFile {
    try {
      return JSON.parse(readFileSync(join(this.root, 'active.json'), 'utf8')) as ActiveFile;
    } catch {
      return { active: null, history: [] };
    }
  }

  active(): ModelRef | null {
    const a = this.readActive().active;
    return a && this.get(a) ? a : null;
  }

  setActive(ref: ModelRef, now: number): void {
    const a = this.readActive();
    a.active = { modelId: ref.modelId, version: ref.version };
    a.history = [...a.history, { modelId: ref.modelId, version: ref.version, at: now }].slice(-100);
    const tmp = join(this.root, `.active-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(tmp, JSON.stringify(a));
    renameSync(tmp, join(this.root, 'active.json'));
  }

  /** The version active before the current one (still installed), for a rollback without a named target. */
  previous(): ModelRef | null {
    const { active, history } = this.readActive();
    for (let i = history.length - 1; i >= 0; i--) {
      const h = history[i]!;
      const ref = { modelId: h.modelId, version: h.version };
      if (!sameRef(ref, active) && this.get(ref)) return ref;
    }
    return null;
  }

  /** Keeps the newest `keepVersions` installs of a model, and always the active and the previous one. */
  prune(modelId: string): ModelRef[] {
    const keep = [this.active(), this.previous()];
    const removed: ModelRef[] = [];
    this.list(modelId).forEach((m, i) => {
      if (i < this.keepVersions || keep.some((k) => sameRef(k, m.ref))) return;
      rmSync(m.dir, { recursive: true, force: true });
      removed.push(m.ref);
    });
    return removed;
  }
}
