import { randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Stream } from '../../shared/hash.ts';

/** One file copied into a staging folder and hashed there, waiting to become part of a version folder. */
export type Staged = { staged: string; name: string; sha256: string; size: number };

/** A registry file's hash and size, through the one file hasher in shared/hash.ts. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const { sha256, size } = await sha256Stream(createReadStream(path, { highWaterMark: 1 << 20 }));
  return { sha256, size };
}

/**
 * A private folder under `<registry>/.staging/` for one registration. Files are copied in and hashed
 * from the copy, so what is hashed, checked in onnxruntime and signed is the very file that is moved
 * into the version folder; nothing outside can change it between those steps.
 */
export class Staging {
  private constructor(readonly dir: string) {}

  static create(root: string): Staging {
    const dir = join(root, randomBytes(6).toString('hex'));
    mkdirSync(dir, { recursive: true });
    return new Staging(dir);
  }

  /** The sub-folder that becomes one version folder. */
  folder(sub: string): string {
    return join(this.dir, sub);
  }

  /** Copies `from` to `<sub>/<name>` and hashes the copy; a copy that does not match `expectSha` is refused. */
  async stage(sub: string, from: string, name: string, expectSha?: string): Promise<Staged> {
    const dir = this.folder(sub);
    await mkdir(dir, { recursive: true });
    const to = join(dir, name);
    try {
      await copyFile(from, to);
    } catch (e) {
      throw new Error(`cannot copy ${from} into the registry: ${(e as Error).message}`);
    }
    const h = await hashFile(to);
    if (expectSha !== undefined && h.sha256 !== expectSha) throw new Error(`${from}: sha256 ${h.sha256} differs from the trainer's ${expectSha}`);
    return { staged: to, name, ...h };
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
