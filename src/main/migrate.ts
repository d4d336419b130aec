import { loadConfig } from '../config/config.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { exitOnConfigError } from './startup.js';
import type { Flags } from './entrypoints.js';

export async function runMigrateImpl(flags: Flags): Promise<void> {
  const config = exitOnConfigError(() => loadConfig(flags));
  const store = openSqliteStore(config.databasePath);
  await store.close();
  console.log(`migrated ${config.databasePath}`);
}
