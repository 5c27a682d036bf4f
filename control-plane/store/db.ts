import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { MIGRATIONS } from './migrations.ts';

export type Db = Database.Database;

/**
 * `q(sql)`: the prepared statement for `sql`, prepared on first use and reused. Preparing a statement per
 * call cost a fifth of the control plane's CPU with thousands of devices talking. Dynamic SQL has few
 * shapes; the cap only guards against surprises.
 */
export function statementCache(db: Db, limit = 256): (sql: string) => Database.Statement {
  const statements = new Map<string, Database.Statement>();
  return (sql) => {
    let st = statements.get(sql);
    if (!st) {
      if (statements.size >= limit) statements.clear();
      st = db.prepare(sql);
      statements.set(sql, st);
    }
    return st;
  };
}

/**
 * Writes a store made to each of its records (a rollout, a tuning) since it was created, for readers that keep what they
 * read until it may have changed. `touchAll` is for a statement that may touch several records (it moves every
 * count). A count only grows; this process is the database's only writer (see "Past one node" in the README).
 */
export class WriteCounts {
  private readonly per = new Map<string, number>();
  private all = 0;

  touch(id: string): void {
    this.per.set(id, (this.per.get(id) ?? 0) + 1);
  }

  touchAll(): void {
    this.all++;
  }

  /** Moves whenever `touch(id)` or `touchAll()` is called. */
  count(id: string): number {
    return this.all + (this.per.get(id) ?? 0);
  }
}

/** Opens (creating if needed) the SQLite file in WAL mode and brings its schema up to date. */
export function openDatabase(path: string, migrations: readonly string[] = MIGRATIONS): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // deleted rows are overwritten, not left in free pages (a secret moved out of the database leaves no bytes behind)
  db.pragma('secure_delete = ON');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db, migrations);
  return db;
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Migrations of one room (training, registry, rollouts...), versioned independently of the core
 * schema so rooms can evolve on their own. Same rules: append, never edit a released one.
 */
export function migrateRoom(db: Db, room: string, migrations: readonly string[]): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (room TEXT PRIMARY KEY, version INTEGER NOT NULL)');
  const row = db.prepare('SELECT version FROM schema_migrations WHERE room = ?').get(room) as { version: number } | undefined;
  const current = row?.version ?? 0;
  if (current > migrations.length) {
    throw new Error(`database schema of "${room}" is at version ${current}, newer than this build knows (${migrations.length}); refusing to touch it`);
  }
  for (let v = current; v < migrations.length; v++) {
    const sql = migrations[v]!;
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (room, version) VALUES (?, ?) ON CONFLICT(room) DO UPDATE SET version = excluded.version').run(room, v + 1);
    })();
  }
}

export function migrate(db: Db, migrations: readonly string[]): void {
  const current = schemaVersion(db);
  if (current > migrations.length) {
    throw new Error(`database schema version ${current} is newer than this build knows (${migrations.length}); refusing to touch it`);
  }
  for (let v = current; v < migrations.length; v++) {
    const sql = migrations[v]!;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
