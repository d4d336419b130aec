import { describeDatabase, loadConfig } from '../config/config.js';
import { openStore } from '../store/open-store.js';
import { exitOnConfigError } from './startup.js';
import type { Flags } from './entrypoints.js';

export async function runMigrateImpl(flags: Flags): Promise<void> {
  const config = exitOnConfigError(() => loadConfig(flags));
  const store = await openStore(config.database);
  await store.close();
  console.log(`migrated ${describeDatabase(config.database)}`);
}
