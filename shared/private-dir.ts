import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A folder only its owner may read (issue 8 item 4: the control plane's data folder was 0755 with a 0644 database
 * holding the operator token and the signing key). Used for the control plane's data folder and the agent's state
 * folder.
 */
export type PrivateDirReport = { created: boolean; fixedDir: boolean; fixedEntries: string[] };

export class PrivateDirError extends Error {
  override readonly name = 'PrivateDirError';
}

const MAX_ENTRIES = 100_000;

/**
 * Creates `dir` as 0700, or makes an existing one 0700 and every file below it 0600 (folders 0700) where group or
 * others had any access. Refuses a folder owned by another user (its owner could read or swap what is written
 * there). Symbolic links are not followed. Returns what it changed so the caller can log it.
 */
export function securePrivateDir(dir: string): PrivateDirReport {
  let created = false;
  try {
    lstatSync(dir);
  } catch {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    created = true;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new PrivateDirError(`${dir} is not a folder`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new PrivateDirError(`${dir} is owned by uid ${st.uid}, not by this user (uid ${uid}); use a folder of your own`);
  const fixedDir = (st.mode & 0o077) !== 0;
  if (fixedDir) chmodSync(dir, 0o700);
  const fixedEntries: string[] = [];
  let seen = 0;
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      if (++seen > MAX_ENTRIES) return;
      const p = join(d, name);
      const s = lstatSync(p);
      if (s.isSymbolicLink()) continue;
      if (s.isDirectory()) {
        if ((s.mode & 0o077) !== 0) {
          chmodSync(p, 0o700);
          fixedEntries.push(p);
        }
        walk(p);
      } else if ((s.mode & 0o077) !== 0) {
        chmodSync(p, s.mode & 0o700);
        fixedEntries.push(p);
      }
    }
  };
  walk(dir);
  return { created, fixedDir, fixedEntries };
}

/** Creates an empty file as 0600 if it does not exist (so SQLite's -wal and -shm, which copy its mode, are 0600 too). */
export function touchPrivate(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  chmodSync(path, 0o600);
}
