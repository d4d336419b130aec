/**
 * What the `fanout` command's server-side subcommands call. The CLI only parses flags into a
 * plain object and hands it here; configuration is resolved once in src/config.
 */
export type ServerRole = 'up' | 'api' | 'dispatcher';

/** Raw flag values as commander produced them (camelCase keys, repeatable flags as arrays). */
export type Flags = Record<string, unknown>;

/** Runs API and/or dispatcher (and, for `up`, workers) until SIGINT/SIGTERM. */
export async function runServer(role: ServerRole, flags: Flags): Promise<void> {
  const { runServerImpl } = await import('./server.js');
  return runServerImpl(role, flags);
}

/** Runs `fanout worker` until SIGINT/SIGTERM (graceful) or, with exitWhenEmpty, until done. */
export async function runWorkerCommand(flags: Flags): Promise<void> {
  const { runWorkerImpl } = await import('./worker-process.js');
  return runWorkerImpl(flags);
}

/** Applies migrations to the configured database and exits. */
export async function runMigrate(flags: Flags): Promise<void> {
  const { runMigrateImpl } = await import('./migrate.js');
  return runMigrateImpl(flags);
}
