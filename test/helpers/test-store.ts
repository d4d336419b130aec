import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { databaseConfig } from '../../src/config/database.js';
import { openStore } from '../../src/store/open-store.js';
import type { Store } from '../../src/store/store.js';

/**
 * Which store a test run uses: SQLite by default; PostgreSQL when the run was started with
 * FANOUT_TEST_STORE=postgres (global-setup.ts then starts one PostgreSQL cluster for the run).
 * Services, clusters of processes and store-level tests take their DATABASE_URL from here, so
 * the same test files run once on each store (scripts/test.sh).
 */
export function testStoreKind(): 'sqlite' | 'postgres' {
  // Suites whose global setup provides no store (the Kubernetes suite) run on SQLite.
  return inject('testStore') === 'postgres' ? 'postgres' : 'sqlite';
}

/**
 * The DATABASE_URL of `dataDir`'s store: the file `fanout.db` in it, or a PostgreSQL database
 * made on first use and remembered in the directory, so a service restarted on the same data
 * directory finds its data again, as with SQLite.
 */
export async function newDatabaseUrl(dataDir: string): Promise<string> {
  if (testStoreKind() === 'sqlite') return path.join(dataDir, 'fanout.db');
  const remembered = path.join(dataDir, 'database-url');
  if (fs.existsSync(remembered)) return fs.readFileSync(remembered, 'utf8');
  const admin = inject('postgresAdminUrl');
  const name = `f_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  fs.writeFileSync(remembered, url.toString());
  return url.toString();
}

/** Opens (and migrates) the store at a DATABASE_URL, as the service does. */
export function openTestStore(databaseUrl: string): Promise<Store> {
  return openStore(databaseConfig(databaseUrl, {}));
}
