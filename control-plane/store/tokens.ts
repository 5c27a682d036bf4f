import type { Statement } from 'better-sqlite3';
import { statementCache, type Db } from './db.ts';

export type EnrollmentTokenRow = {
  id: string;
  label: string;
  createdAt: number;
  expiresAt: number | null;
  maxUses: number | null;
  uses: number;
  revokedAt: number | null;
};

type Raw = { id: string; secret_hash: string; label: string; created_at: number; expires_at: number | null; max_uses: number | null; uses: number; revoked_at: number | null };

const toRow = (r: Raw): EnrollmentTokenRow => ({
  id: r.id,
  label: r.label,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  maxUses: r.max_uses,
  uses: r.uses,
  revokedAt: r.revoked_at,
});

/** Why a token cannot enroll a device now, or null when it can. Pure. */
export function tokenUnusableReason(t: EnrollmentTokenRow, now: number): string | null {
  if (t.revokedAt !== null) return 'enrollment token revoked';
  if (t.expiresAt !== null && now >= t.expiresAt) return 'enrollment token expired';
  if (t.maxUses !== null && t.uses >= t.maxUses) return 'enrollment token used up';
  return null;
}

export class TokenStore {
  /** Every enrollee's login and enrollment reads its token: statements prepared once. */
  private readonly q: (sql: string) => Statement;
  constructor(db: Db) {
    this.q = statementCache(db);
  }

  create(t: { id: string; secretHash: string; label: string; expiresAt: number | null; maxUses: number | null }, now: number): void {
    this
      .q('INSERT INTO enrollment_tokens (id, secret_hash, label, created_at, expires_at, max_uses) VALUES (?, ?, ?, ?, ?, ?)')
      .run(t.id, t.secretHash, t.label, now, t.expiresAt, t.maxUses);
  }

  get(id: string): (EnrollmentTokenRow & { secretHash: string }) | null {
    const r = this.q('SELECT * FROM enrollment_tokens WHERE id = ?').get(id) as Raw | undefined;
    return r ? { ...toRow(r), secretHash: r.secret_hash } : null;
  }

  list(): EnrollmentTokenRow[] {
    return (this.q('SELECT * FROM enrollment_tokens ORDER BY created_at DESC, id').all() as Raw[]).map(toRow);
  }

  /** Counts one use, only while the token is still usable (atomic against concurrent enrollments). */
  consume(id: string, now: number): boolean {
    const r = this
      .q(
        `UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = ? AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > ?) AND (max_uses IS NULL OR uses < max_uses)`,
      )
      .run(id, now);
    return r.changes > 0;
  }

  revoke(id: string, now: number): boolean {
    return this.q('UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id).changes > 0;
  }
}

export class SettingsStore {
  constructor(private readonly db: Db) {}
  get(key: string): string | null {
    return (this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value ?? null;
  }
  set(key: string, value: string): void {
    this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }
  delete(key: string): void {
    this.db.prepare('DELETE FROM settings WHERE key = ?').run(key);
  }
}
