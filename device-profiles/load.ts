import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseProfileFiles, type ProfileLoadResult } from '../shared/profile.ts';

/** The profiles shipped with EdgeFleet. Operators point EDGEFLEET_PROFILES_DIR elsewhere for their own. */
export const BUILTIN_PROFILES_DIR = dirname(fileURLToPath(import.meta.url));

/** Reads every `*.json` in a folder; each bad file is reported with its name and the field at fault. */
export function loadProfilesFromDir(dir: string = BUILTIN_PROFILES_DIR): ProfileLoadResult {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    return { ok: false, error: [`${dir}: cannot read profile folder (${(e as Error).message})`] };
  }
  if (names.length === 0) return { ok: false, error: [`${dir}: no *.json profile files`] };
  return parseProfileFiles(names.map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') })));
}
