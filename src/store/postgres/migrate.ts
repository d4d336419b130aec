import path from 'node:path';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { packageRoot } from '../../package-root.js';
import { unavailableOr } from './unavailable.js';

export const POSTGRES_MIGRATIONS = path.join(packageRoot, 'migrations', 'postgres');

/**
 * The advisory lock every Fanout process takes to migrate ("Fanout" in ASCII, a fixed int8).
 * Several replicas starting at once on a new database migrate one after the other: the first
 * applies the migrations, the others then find nothing left to do.
 */
export const MIGRATION_LOCK_KEY = 0x46616e6f7574;

/**
 * Applies the pending migrations of migrations/postgres (drizzle's node-postgres migrator,
 * which records them in drizzle.__drizzle_migrations) on one dedicated connection holding
 * pg_advisory_lock. The lock is a session lock: if this process dies, PostgreSQL releases it
 * with the connection. No statement timeout here: a migration may take long, and waiting for
 * another replica's migration is expected.
 */
export async function applyPostgresMigrations(url: string, opts: { connectTimeoutMs?: number } = {}): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000, application_name: 'fanout-migrate' });
  // A connection lost while idle between statements: the next statement reports it.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw unavailableOr(err);
  }
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await migrate(drizzle(client), { migrationsFolder: POSTGRES_MIGRATIONS });
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
  } catch (err) {
    throw unavailableOr(err);
  } finally {
    await client.end().catch(() => {});
  }
}
