import type { Logger } from 'pino';
import type { DatabaseConfig } from '../config/config.js';
import { applyPostgresMigrations } from './postgres/migrate.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

export interface OpenStoreOptions {
  /** apply pending migrations first (default true; `fanout migrate` and every server do) */
  migrate?: boolean;
  /** where the PostgreSQL pool reports idle connections that broke */
  logger?: Pick<Logger, 'warn'>;
}

/** The store of DATABASE_URL: PostgreSQL for a postgres:// URL, else the SQLite file. */
export async function openStore(db: DatabaseConfig, opts: OpenStoreOptions = {}): Promise<Store> {
  if (db.kind === 'sqlite') return openSqliteStore(db.file, { migrate: opts.migrate });
  if (opts.migrate !== false) await applyPostgresMigrations(db.url, { connectTimeoutMs: db.connectTimeoutMs });
  return new PostgresStore(db, opts.logger);
}
