import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { formatZodError } from '../shared/messages.ts';
import { checkId } from '../shared/ids.ts';
import { isValidDeviceId } from '../shared/topics.ts';
import type { Result } from '../shared/result.ts';

/**
 * The agent's state folder:
 *   device-id            the id, generated once (or given) and kept across restarts
 *   identity.json  0600  the device credential after enrollment
 *   enroll-pending.json 0600  the password offered while enrolling, so a retry after a crash offers the same one
 */
export const DEVICE_ID_FILE = 'device-id';
export const IDENTITY_FILE = 'identity.json';
export const PENDING_FILE = 'enroll-pending.json';

export const IdentitySchema = z.object({
  deviceId: z.string().refine(isValidDeviceId, 'not a valid device id'),
  password: z.string().min(32).max(256),
  /** The control plane's ed25519 key (PEM), pinned at enrollment; model manifests are verified against it. */
  signingPublicKey: z.string().min(1),
  enrolledAt: z.number().int().nonnegative(),
  brokerUrl: z.string().min(1),
});
export type Identity = z.infer<typeof IdentitySchema>;

const PendingSchema = z.object({ deviceId: z.string(), password: z.string().min(32), createdAt: z.number() });


export function generateDeviceId(): string {
  return `dev-${randomBytes(6).toString('hex')}`;
}

/** The device's own broker secret: 32 random bytes, base64url (43 characters). */
export function generateDevicePassword(): string {
  return randomBytes(32).toString('base64url');
}

export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Write to a temporary file beside the target, fsync, rename: a crash leaves the old file or the new one, never half of one. */
export function writeFileAtomic(path: string, data: string, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

function readOptional(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function readJson<T>(path: string, schema: z.ZodType<T>): Result<T | null> {
  let text: string | null;
  try {
    text = readOptional(path);
  } catch (e) {
    return { ok: false, error: `${path}: cannot read (${(e as Error).message})` };
  }
  if (text === null) return { ok: true, value: null };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, error: `${path}: not valid JSON; move it away to enroll again` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { ok: false, error: `${path}: ${formatZodError(parsed.error)}; move it away to enroll again` };
  return { ok: true, value: parsed.data };
}

export function loadIdentity(stateDir: string): Result<Identity | null> {
  return readJson(join(stateDir, IDENTITY_FILE), IdentitySchema);
}

export function saveIdentity(stateDir: string, identity: Identity): void {
  ensureStateDir(stateDir);
  writeFileAtomic(join(stateDir, IDENTITY_FILE), JSON.stringify(identity, null, 2) + '\n', 0o600);
}

/**
 * The password to offer when enrolling: the one stored from an unfinished attempt for the same id, else a fresh one
 * (stored before it is sent, so the control plane and the device never disagree after a crash).
 */
export function pendingEnrollmentPassword(stateDir: string, deviceId: string): string {
  const pending = readJson(join(stateDir, PENDING_FILE), PendingSchema);
  if (pending.ok && pending.value && pending.value.deviceId === deviceId) return pending.value.password;
  const password = generateDevicePassword();
  ensureStateDir(stateDir);
  writeFileAtomic(join(stateDir, PENDING_FILE), JSON.stringify({ deviceId, password, createdAt: Date.now() }) + '\n', 0o600);
  return password;
}

export function clearPendingEnrollment(stateDir: string): void {
  rmSync(join(stateDir, PENDING_FILE), { force: true });
}

/**
 * Which id this agent runs as: the stored identity's, else the one asked for, else the one generated earlier,
 * else a new one. Asking for an id other than the enrolled one is an error, not a silent re-enrollment.
 */
export function resolveDeviceId(stateDir: string, requested?: string | null): Result<string> {
  if (requested != null) {
    const c = checkId('device', requested);
    if (!c.ok) return { ok: false, error: c.error };
  }
  const identity = loadIdentity(stateDir);
  if (!identity.ok) return identity;
  if (identity.value) {
    if (requested != null && requested !== identity.value.deviceId) {
      return {
        ok: false,
        error: `${join(stateDir, IDENTITY_FILE)}: this state folder is enrolled as "${identity.value.deviceId}", not "${requested}"; use another state folder or drop the device id`,
      };
    }
    return { ok: true, value: identity.value.deviceId };
  }
  const idPath = join(stateDir, DEVICE_ID_FILE);
  let stored: string | null;
  try {
    stored = readOptional(idPath)?.trim() || null;
  } catch (e) {
    return { ok: false, error: `${idPath}: cannot read (${(e as Error).message})` };
  }
  if (stored !== null && !isValidDeviceId(stored)) return { ok: false, error: `${idPath}: "${stored}" is not a valid device id` };
  const id = requested ?? stored ?? generateDeviceId();
  if (id !== stored) {
    try {
      ensureStateDir(stateDir);
      writeFileAtomic(idPath, id + '\n', 0o600);
    } catch (e) {
      return { ok: false, error: `${idPath}: cannot write (${(e as Error).message})` };
    }
  }
  return { ok: true, value: id };
}

/** The id this state folder already has (enrolled or generated), without creating one; null when none or unreadable. */
export function storedDeviceId(stateDir: string): string | null {
  const identity = loadIdentity(stateDir);
  if (identity.ok && identity.value) return identity.value.deviceId;
  try {
    const id = readOptional(join(stateDir, DEVICE_ID_FILE))?.trim();
    return id && isValidDeviceId(id) ? id : null;
  } catch {
    return null;
  }
}
