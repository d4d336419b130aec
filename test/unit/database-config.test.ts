import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeDatabase, loadConfig } from '../../src/config/config.js';

const URL_WITH_SECRET = 'postgres://fanout:s3cret-pw@db.internal:5432/fanout?sslmode=verify-full&sslrootcert=/etc/fanout/ca.pem';

describe('database configuration: --database / DATABASE_URL, FANOUT_DB_*', () => {
  it('unset: the SQLite file <data-dir>/fanout.db', () => {
    const config = loadConfig({ dataDir: '/srv/fanout' }, {});
    expect(config.database).toEqual({ kind: 'sqlite', file: path.resolve('/srv/fanout/fanout.db') });
    expect(config.database).toEqual({ kind: 'sqlite', file: path.resolve('/srv/fanout/fanout.db') });
  });

  it('a path is a SQLite file, resolved; the flag wins over the environment', () => {
    expect(loadConfig({}, { DATABASE_URL: 'rel/x.db' }).database).toEqual({ kind: 'sqlite', file: path.resolve('rel/x.db') });
    expect(loadConfig({ database: '/a.db' }, { DATABASE_URL: '/b.db' }).database).toEqual({ kind: 'sqlite', file: '/a.db' });
  });

  it.each(['postgres://u@127.0.0.1/db', 'postgresql://u:p@[::1]:6543/db?sslmode=require', URL_WITH_SECRET])('%s is PostgreSQL with the default pool settings', (url) => {
    const config = loadConfig({}, { DATABASE_URL: url });
    expect(config.database).toEqual({ kind: 'postgres', url, poolSize: 10, statementTimeoutMs: 30_000, connectTimeoutMs: 5000 });
  });

  it('reads FANOUT_DB_POOL_SIZE, FANOUT_DB_STATEMENT_TIMEOUT_SECONDS and FANOUT_DB_CONNECT_TIMEOUT_SECONDS', () => {
    const env = { DATABASE_URL: 'postgres://u@127.0.0.1/db', FANOUT_DB_POOL_SIZE: '25', FANOUT_DB_STATEMENT_TIMEOUT_SECONDS: '120', FANOUT_DB_CONNECT_TIMEOUT_SECONDS: '2' };
    expect(loadConfig({}, env).database).toMatchObject({ poolSize: 25, statementTimeoutMs: 120_000, connectTimeoutMs: 2000 });
  });

  it.each<[Record<string, string>, RegExp]>([
    [{ FANOUT_DB_POOL_SIZE: '0' }, /^FANOUT_DB_POOL_SIZE must be an integer from 1 to 1000, got "0"$/],
    [{ FANOUT_DB_POOL_SIZE: 'ten' }, /^FANOUT_DB_POOL_SIZE must be an integer/],
    [{ FANOUT_DB_POOL_SIZE: '1001' }, /^FANOUT_DB_POOL_SIZE must be an integer from 1 to 1000/],
    [{ FANOUT_DB_STATEMENT_TIMEOUT_SECONDS: '0' }, /^FANOUT_DB_STATEMENT_TIMEOUT_SECONDS must be an integer from 1 to 2147483/],
    [{ FANOUT_DB_STATEMENT_TIMEOUT_SECONDS: '1.5' }, /^FANOUT_DB_STATEMENT_TIMEOUT_SECONDS must be an integer/],
    [{ FANOUT_DB_STATEMENT_TIMEOUT_SECONDS: '9999999' }, /^FANOUT_DB_STATEMENT_TIMEOUT_SECONDS must be an integer from 1 to 2147483/],
    [{ FANOUT_DB_CONNECT_TIMEOUT_SECONDS: '-1' }, /^FANOUT_DB_CONNECT_TIMEOUT_SECONDS must be an integer/],
    [{ DATABASE_URL: 'postgres://fanout:s3cret-pw@ bad host/db' }, /^DATABASE_URL is not a valid postgres:\/\/ URL/],
    [{ DATABASE_URL: 'postgres://fanout:s3cret-pw@/db' }, /^DATABASE_URL is not a valid postgres:\/\/ URL|^DATABASE_URL names no host/],
  ])('%j is refused with one clear line, no password in it', (env, message) => {
    let error: unknown;
    try {
      loadConfig({}, { DATABASE_URL: URL_WITH_SECRET, ...env });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
    expect((error as Error).message).not.toContain('s3cret-pw');
  });

  it('the pool settings matter only with PostgreSQL', () => {
    expect(loadConfig({}, { FANOUT_DB_POOL_SIZE: 'bogus' }).database.kind).toBe('sqlite');
  });

  it('describeDatabase shows where the data is without the password', () => {
    const described = describeDatabase(loadConfig({}, { DATABASE_URL: URL_WITH_SECRET }).database);
    expect(described).toBe('postgres://fanout:***@db.internal:5432/fanout?sslmode=verify-full&sslrootcert=/etc/fanout/ca.pem');
    expect(describeDatabase({ kind: 'postgres', url: 'postgres://u@h/db?password=s3cret-pw', poolSize: 1, statementTimeoutMs: 1000, connectTimeoutMs: 1000 })).not.toContain('s3cret-pw');
    expect(describeDatabase({ kind: 'sqlite', file: '/data/fanout.db' })).toBe('/data/fanout.db');
  });
});
