import { loadConfig } from '../config/config.js';
import { openStore } from '../store/db.js';
import { exitOnConfigError } from './startup.js';
import type { Flags } from './entrypoints.js';

export async function runMigrateImpl(flags: Flags): Promise<void> {
  const config = exitOnConfigError(() => loadConfig(flags));
  const store = openStore(config.databasePath);
  store.close();
  console.log(`migrated ${config.databasePath}`);
}
