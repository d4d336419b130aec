import path from 'node:path';

/**
 * DATABASE_URL / --database: a SQLite file path (the default, `<data-dir>/fanout.db`), or a
 * postgres:// URL with the FANOUT_DB_* pool settings. See docs/operations.md#postgresql.
 */
export type DatabaseConfig =
  | { kind: 'sqlite'; file: string }
  | {
      kind: 'postgres';
      /** may carry a password: never logged (see describeDatabase) */
      url: string;
      poolSize: number;
      statementTimeoutMs: number;
      connectTimeoutMs: number;
    };

/** Thrown as the config module's ConfigError by the caller (one clear line, no secret in it). */
export class DatabaseConfigError extends Error {}

type Env = Record<string, string | undefined>;

const POSTGRES_URL = /^postgres(ql)?:\/\//i;
/** setTimeout's ceiling, in seconds: a longer timer would fire at once. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

export function databaseConfig(value: string, env: Env): DatabaseConfig {
  if (!POSTGRES_URL.test(value)) return { kind: 'sqlite', file: path.resolve(value) };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // not echoed: the text may hold a password
    throw new DatabaseConfigError('DATABASE_URL is not a valid postgres:// URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE)');
  }
  if (url.hostname === '' && !url.searchParams.has('host')) {
    throw new DatabaseConfigError(`DATABASE_URL names no host: ${describeDatabaseUrl(url)}`);
  }
  return {
    kind: 'postgres',
    url: value,
    poolSize: bounded(env.FANOUT_DB_POOL_SIZE, 'FANOUT_DB_POOL_SIZE', 10, 1, 1000),
    statementTimeoutMs: bounded(env.FANOUT_DB_STATEMENT_TIMEOUT_SECONDS, 'FANOUT_DB_STATEMENT_TIMEOUT_SECONDS', 30, 1, MAX_TIMER_SECONDS) * 1000,
    connectTimeoutMs: bounded(env.FANOUT_DB_CONNECT_TIMEOUT_SECONDS, 'FANOUT_DB_CONNECT_TIMEOUT_SECONDS', 5, 1, MAX_TIMER_SECONDS) * 1000,
  };
}

function bounded(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new DatabaseConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** The database for logs and errors: the file, or the URL with its password replaced by `***`. */
export function describeDatabase(db: DatabaseConfig): string {
  if (db.kind === 'sqlite') return db.file;
  try {
    return describeDatabaseUrl(new URL(db.url));
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

function describeDatabaseUrl(url: URL): string {
  const safe = new URL(url.href);
  if (safe.password !== '') safe.password = '***';
  // a password can also come as a query parameter
  if (safe.searchParams.has('password')) safe.searchParams.set('password', '***');
  return safe.href;
}
