import { readFileSync } from 'node:fs';

/**
 * The embedded broker lives in the control-plane process, so every device connection is one of that process's open
 * files. At the open-file limit `accept` fails for every socket, HTTP included: measured on the 2-core development
 * host (soft and hard limit 20,000), a 20,000-agent fleet left the control plane with 20,000 descriptors and
 * `GET /healthz` answered with an empty reply. Capping MQTT connections below the limit keeps a reserve for HTTP,
 * SQLite, model files and benchmark children: past the cap a device is refused (and retries with backoff) while the
 * operator can still reach the control plane.
 */

/** Descriptors kept back from the device cap for everything else the process opens. */
export const FD_RESERVE = 512;
/** Below this the cap would be useless; a process with a tinier limit gets this many and a warning. */
export const MIN_CAP = 16;

/** The soft "Max open files" of a /proc/<pid>/limits text; null when absent or unlimited. */
export function parseOpenFileLimit(limitsText: string): number | null {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limitsText);
  if (!m || m[1] === 'unlimited') return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** This process's soft open-file limit (Linux); null where /proc is absent or the limit is unlimited. */
export function ownOpenFileLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | null {
  try {
    return parseOpenFileLimit(read());
  } catch {
    return null;
  }
}

export type ConnectionCap = { max: number | null; source: 'configured' | 'open-file limit' | 'none'; openFileLimit: number | null };

/** The embedded broker's connection cap: the configured one, else the open-file limit less the reserve. */
export function connectionCap(configured: number | undefined, openFileLimit: number | null): ConnectionCap {
  if (configured !== undefined) return { max: configured, source: 'configured', openFileLimit };
  if (openFileLimit === null) return { max: null, source: 'none', openFileLimit };
  return { max: Math.max(MIN_CAP, openFileLimit - FD_RESERVE), source: 'open-file limit', openFileLimit };
}
