import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_NOT_FOUND, findPostgresBinDir, startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * Proves the PostgreSQL test infrastructure (test/helpers/postgres.ts) on a real cluster: a
 * client connects, COPY streams rows in, a restart drops old connections while new ones work, a
 * terminated backend's open transaction leaves nothing, and stop() removes the directory.
 * Missing binaries fail this file with "run npm run setup"; it never skips.
 */
let cluster: TestPostgres;
const clients: pg.Client[] = [];

async function connect(url = cluster.url): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  // A server-side disconnect is emitted as 'error' on an idle client; the tests look at it through the next query.
  client.on('error', () => {});
  await client.connect();
  clients.push(client);
  return client;
}

/** The state letter of /proc/PID/stat (R, S, Z, …), or 'gone'. */
function processState(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
  } catch {
    return 'gone';
  }
}

beforeAll(async () => {
  cluster = await startTestPostgres();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => {})));
  await cluster?.stop();
});

describe('test PostgreSQL cluster', () => {
  it('listens on 127.0.0.1 only, with its socket in its own directory, and fsync off', async () => {
    expect(cluster.url).toBe(`postgres://postgres@127.0.0.1:${cluster.port}/fanout_test`);
    const client = await connect();
    const settings = await client.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'unix_socket_directories', 'fsync', 'port') ORDER BY name`,
    );
    expect(Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]))).toEqual({
      fsync: 'off',
      listen_addresses: '127.0.0.1',
      port: String(cluster.port),
      unix_socket_directories: `${cluster.dir}/sock`,
    });
    expect((await client.query('SELECT current_database() AS db')).rows[0].db).toBe('fanout_test');
  });

  it('streams 100k rows in with COPY FROM STDIN', async () => {
    const client = await connect();
    await client.query('CREATE TABLE copied (id integer PRIMARY KEY, payload text NOT NULL)');
    const total = 100_000;
    function* lines() {
      for (let i = 1; i <= total; i++) yield `${i}\tpayload-${i}\n`;
    }
    const copy = client.query(copyFrom('COPY copied (id, payload) FROM STDIN'));
    await pipeline(Readable.from(lines()), copy);
    expect(copy.rowCount).toBe(total);
    const { rows } = await client.query<{ n: number; sum: string; last: string }>(
      `SELECT count(*)::int AS n, sum(id)::text AS sum, max(payload) FILTER (WHERE id = $1) AS last FROM copied`,
      [total],
    );
    expect(rows[0]).toEqual({ n: total, sum: String((total * (total + 1)) / 2), last: `payload-${total}` });
  });

  it('creates further databases', async () => {
    const url = await cluster.createDatabase('second_db');
    expect(url).toBe(cluster.urlFor('second_db'));
    const client = await connect(url);
    expect((await client.query('SELECT current_database() AS db')).rows[0].db).toBe('second_db');
    await expect(cluster.createDatabase('Robert"; DROP')).rejects.toThrow(/not a plain lower-case identifier/);
  });

  it('restart(fast): the old connection errors, a new one works and the data is still there', async () => {
    const old = await connect();
    await old.query('CREATE TABLE survives (n integer)');
    await old.query('INSERT INTO survives VALUES (1), (2)');
    const pidBefore = cluster.postmasterPid();
    await cluster.restart('fast');
    expect(cluster.postmasterPid()).not.toBe(pidBefore);
    await expect(old.query('SELECT 1')).rejects.toThrow();
    const fresh = await connect();
    expect((await fresh.query('SELECT count(*)::int AS n FROM survives')).rows[0].n).toBe(2);
  });

  it('stopServer() refuses connections until startServer()', async () => {
    await cluster.stopServer('immediate');
    await expect(connect()).rejects.toThrow(/ECONNREFUSED/);
    await cluster.startServer();
    const client = await connect();
    expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  });

  it('pg_terminate_backend mid-transaction: the transaction errors and its rows are absent', async () => {
    const setup = await connect();
    await setup.query('CREATE TABLE tx_rows (n integer)');
    const victim = await connect();
    await victim.query('BEGIN');
    await victim.query('INSERT INTO tx_rows SELECT generate_series(1, 1000)');
    // The superuser connection of terminateBackends() is not among the ones it ends.
    expect(await cluster.terminateBackends('fanout_test')).toBeGreaterThanOrEqual(2);
    await expect(victim.query('COMMIT')).rejects.toThrow();
    const after = await connect();
    expect((await after.query('SELECT count(*)::int AS n FROM tx_rows')).rows[0].n).toBe(0);
  });

  it('stop() removes the directory and the server is gone', async () => {
    const other = await startTestPostgres();
    expect(fs.existsSync(other.dir)).toBe(true);
    const pid = other.postmasterPid()!;
    expect(pid).toBeGreaterThan(0);
    await other.stop();
    expect(fs.existsSync(other.dir)).toBe(false);
    // Gone, or a zombie: the postmaster is not our child, so whoever reaps orphans here may not have yet.
    expect(['gone', 'Z']).toContain(processState(pid));
    const refused = new pg.Client({ connectionString: other.url });
    await expect(refused.connect()).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('finding the PostgreSQL binaries', () => {
  /** A fake install: each `version/bin` gets executable initdb and pg_ctl (or only the names given). */
  function fakeRoot(layout: Record<string, string[]>): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-pgbin-'));
    for (const [version, tools] of Object.entries(layout)) {
      const bin = path.join(root, version, 'bin');
      fs.mkdirSync(bin, { recursive: true });
      for (const tool of tools) fs.writeFileSync(path.join(bin, tool), '#!/bin/sh\n', { mode: 0o755 });
    }
    return root;
  }

  it.each<{ name: string; layout: Record<string, string[]>; found?: string }>([
    { name: 'the newest complete version of 15 or later', layout: { '14': ['initdb', 'pg_ctl'], '15': ['initdb', 'pg_ctl'], '16': ['initdb', 'pg_ctl'] }, found: '16' },
    { name: 'skips a version without initdb', layout: { '15': ['initdb', 'pg_ctl'], '17': ['pg_ctl'] }, found: '15' },
    { name: 'ignores versions before 15 and other entries', layout: { '13': ['initdb', 'pg_ctl'], 'latest': ['initdb', 'pg_ctl'] }, found: undefined },
    { name: 'nothing installed', layout: {}, found: undefined },
  ])('$name', ({ layout, found }) => {
    const root = fakeRoot(layout);
    try {
      if (found) expect(findPostgresBinDir(root, '')).toBe(path.join(root, found, 'bin'));
      else expect(() => findPostgresBinDir(root, '')).toThrow(POSTGRES_NOT_FOUND);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('falls back to pg_ctl on PATH, and tells to run npm run setup when there is none', () => {
    const onPath = fakeRoot({ '15': ['initdb', 'pg_ctl'] });
    try {
      const bin = path.join(onPath, '15', 'bin');
      expect(findPostgresBinDir(path.join(onPath, 'missing'), `/nonexistent${path.delimiter}${bin}`)).toBe(bin);
      expect(() => findPostgresBinDir(path.join(onPath, 'missing'), '/nonexistent')).toThrow(/run npm run setup/);
    } finally {
      fs.rmSync(onPath, { recursive: true, force: true });
    }
  });
});
