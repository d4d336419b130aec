import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.js';
import { packageRoot } from '../package-root.js';

export type Db = BetterSQLite3Database<typeof schema>;

/** An open store: drizzle for ordinary queries, the raw handle for hot-path prepared statements. */
export interface StoreHandle {
  db: Db;
  sqlite: Database.Database;
  close(): void;
}

const MIGRATIONS = path.join(packageRoot, 'migrations');

/** Opens (creating if needed) the SQLite file in WAL mode and applies pending migrations. */
export function openStore(file: string, opts: { migrate?: boolean } = {}): StoreHandle {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new Database(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  const db = drizzle(sqlite, { schema });
  if (opts.migrate !== false) applyMigrations(sqlite, db);
  sqlite.pragma('foreign_keys = ON');
  return { db, sqlite, close: () => sqlite.close() };
}

/**
 * Migrations run with foreign keys off: a drizzle-kit table rebuild (create a copy, drop the old
 * table, rename) would otherwise delete child rows through ON DELETE CASCADE when it drops the
 * old table. A dangling reference afterwards is fatal.
 */
export function applyMigrations(sqlite: Database.Database, db: Db): void {
  sqlite.pragma('foreign_keys = OFF');
  try {
    migrate(db, { migrationsFolder: MIGRATIONS });
  } catch (err) {
    // Two processes starting on a new file (the API and dispatcher pods) can both find a
    // migration missing; the one that loses gets "table … already exists" and rolled back. By
    // then the winner has recorded it, so running them again finds nothing left to do.
    const cause = (err as { cause?: unknown }).cause;
    const text = `${(err as Error).message} ${cause instanceof Error ? cause.message : ''}`;
    if (!/already exists/.test(text)) throw err;
    migrate(db, { migrationsFolder: MIGRATIONS });
  }
  const broken = sqlite.pragma('foreign_key_check') as unknown[];
  if (broken.length > 0) throw new Error(`migration left ${broken.length} broken foreign keys`);
}
