import type Database from 'better-sqlite3';
import { deviceLoginAllowed } from './login-rules.ts';

export type LoginSnapshot = { devices: { id: string; hash: string }[]; tokens: { id: string; hash: string }[] };

/**
 * Every login the broker should hold, read from the store: enrolled devices that are not revoked and
 * enrollment tokens that can still be used. Sent to Mosquitto's plugin after every (re)connect, so
 * whatever changed while the broker was away (a revocation, an expiry) is applied on its return.
 */
export function loginSnapshot(db: Database.Database, now: number): LoginSnapshot {
  const devices = (db.prepare('SELECT id, password_hash AS hash FROM devices WHERE revoked_at IS NULL AND password_hash IS NOT NULL').all() as { id: string; hash: string }[]).filter((d) =>
    deviceLoginAllowed(d.id),
  );
  const tokens = db
    .prepare('SELECT id, secret_hash AS hash FROM enrollment_tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) AND (max_uses IS NULL OR uses < max_uses)')
    .all(now) as { id: string; hash: string }[];
  return { devices, tokens };
}
