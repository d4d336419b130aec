import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { findFreePort } from '../../src/main/local-redis.js';

/**
 * A throwaway PostgreSQL cluster for tests, from Debian's `postgresql` package (`npm run setup`
 * installs it): `initdb` into a temp directory, listening on 127.0.0.1 only, on a free port,
 * with its socket in that directory, trust authentication and no fsync (test data need not
 * survive a power cut; `{ durable: true }` keeps fsync for the benchmark). `initdb` and `postgres` refuse to run as root, so as root every server
 * command runs as the `postgres` user, which owns the directory.
 *
 * Fault tests use stopServer()/startServer()/restart() (the port and data are kept) and
 * terminateBackends(); stop() is the final cleanup and removes the directory.
 */
export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/fanout_test, a database made for this cluster */
  url: string;
  port: number;
  /** the temp directory: data/, the socket directory sock/ and postgres.log */
  dir: string;
  logFile: string;
  /** The URL of another database of this cluster (it need not exist). */
  urlFor(database: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs one statement as the superuser on `database` (default: the cluster's `postgres`). */
  sql<Row extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params?: unknown[], database?: string): Promise<Row[]>;
  /** pg_terminate_backend() on every client connection (to one database if given) but its own; returns how many. */
  terminateBackends(database?: string): Promise<number>;
  /** The postmaster's pid while the server runs (from data/postmaster.pid). */
  postmasterPid(): number | undefined;
  /** `pg_ctl stop -m MODE`: 'immediate' is a crash (no checkpoint; recovery on the next start). */
  stopServer(mode?: ShutdownMode): Promise<void>;
  /** `pg_ctl start -w` on the same port and data. */
  startServer(): Promise<void>;
  /** `pg_ctl restart -m MODE -w`: every client connection is closed. */
  restart(mode?: ShutdownMode): Promise<void>;
  /** Stops the server (immediate) and removes the directory. */
  stop(): Promise<void>;
}

export type ShutdownMode = 'smart' | 'fast' | 'immediate';

export const POSTGRES_NOT_FOUND =
  "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/<version>/bin or on PATH: run npm run setup (it installs Debian's postgresql package)";

const DEFAULT_DATABASE = 'fanout_test';
const MIN_MAJOR = 15;

/**
 * The bin directory of the newest PostgreSQL (15 or later) Debian installed under `root`, else
 * the one of `pg_ctl` on `searchPath`. Throws POSTGRES_NOT_FOUND when there is neither.
 */
export function findPostgresBinDir(root = '/usr/lib/postgresql', searchPath = process.env.PATH ?? ''): string {
  const majors = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && Number(v) >= MIN_MAJOR)
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const major of majors) {
    const bin = path.join(root, major, 'bin');
    if (isExecutable(path.join(bin, 'initdb')) && isExecutable(path.join(bin, 'pg_ctl'))) return bin;
  }
  for (const dir of searchPath.split(path.delimiter)) {
    const pgCtl = dir && path.join(dir, 'pg_ctl');
    if (pgCtl && isExecutable(pgCtl)) {
      const bin = path.dirname(fs.realpathSync(pgCtl));
      if (isExecutable(path.join(bin, 'initdb'))) return bin;
    }
  }
  throw new Error(POSTGRES_NOT_FOUND);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** As root the server commands run as `postgres`; otherwise as whoever we are. */
function serverUser(): { wrap: (cmd: string, args: string[]) => [string, string[]]; uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return { wrap: (cmd, args) => [cmd, args] };
  let ids: string[];
  try {
    ids = ['-u', '-g'].map((flag) => execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  } catch {
    throw new Error(`running as root, but there is no 'postgres' user to run the server as: run npm run setup`);
  }
  return { wrap: (cmd, args) => ['runuser', ['-u', 'postgres', '--', cmd, ...args]], uid: Number(ids[0]), gid: Number(ids[1]) };
}

/** Runs a command to completion; rejects with its output when it fails. */
function run(cmd: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${[cmd, ...args].join(' ')} exited with ${code}:\n${out}`));
    });
  });
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface TestPostgresOptions {
  /**
   * Keep PostgreSQL's durable defaults (fsync, synchronous_commit, full_page_writes on) instead
   * of turning them off: for the benchmark, where a commit should cost what it costs in
   * production. Default false: tests need no durability and run faster without it.
   */
  durable?: boolean;
}

/** Starts a cluster (a few seconds: initdb is most of it) with an empty `fanout_test` database. */
export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const bin = findPostgresBinDir();
  const user = serverUser();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-pg-'));
  const dataDir = path.join(dir, 'data');
  const socketDir = path.join(dir, 'sock');
  const logFile = path.join(dir, 'postgres.log');
  fs.mkdirSync(socketDir);
  if (user.uid !== undefined) for (const p of [dir, socketDir]) fs.chownSync(p, user.uid, user.gid!);
  const server = (cmd: string, args: string[]) => run(...user.wrap(path.join(bin, cmd), args), dir);

  let port = 0;
  let running = false;
  // A test that dies without stop() must not leave a server behind.
  const killOnExit = () => {
    if (running) {
      try {
        execFileSync(...user.wrap(path.join(bin, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-s']), { cwd: dir, stdio: 'ignore' });
      } catch {
        // already gone
      }
      running = false;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);

  const pgCtlStart = async () => {
    await server('pg_ctl', ['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-s']).catch((err: Error) => {
      throw new Error(`${err.message}\n--- ${logFile} ---\n${tail(logFile)}`);
    });
    running = true;
  };

  try {
    await server('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    const settings = [
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${socketDir}'`,
      ...(options.durable ? [] : ['fsync = off', 'synchronous_commit = off', 'full_page_writes = off']),
    ];
    fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), `\n# test cluster (test/helpers/postgres.ts)\n${settings.join('\n')}\n`);
    // A free port can be taken by someone else before the server binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await findFreePort();
      // The last `port` line of postgresql.conf wins.
      fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), `port = ${port}\n`);
      try {
        await pgCtlStart();
        break;
      } catch (err) {
        if (attempt >= 3 || !/could not bind|Address already in use/.test(tail(logFile))) throw err;
      }
    }
  } catch (err) {
    killOnExit();
    process.removeListener('exit', killOnExit);
    throw err;
  }

  const urlFor = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const sql = async <Row extends pg.QueryResultRow>(text: string, params: unknown[] = [], database = 'postgres') => {
    const client = new pg.Client({ connectionString: urlFor(database) });
    await client.connect();
    try {
      return (await client.query<Row>(text, params)).rows;
    } finally {
      await client.end();
    }
  };
  const createDatabase = async (name: string) => {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`createDatabase: '${name}' is not a plain lower-case identifier`);
    await sql(`CREATE DATABASE "${name}"`);
    return urlFor(name);
  };
  const stopServer = async (mode: ShutdownMode = 'fast') => {
    if (!running) return;
    await server('pg_ctl', ['stop', '-w', '-D', dataDir, '-m', mode, '-s']);
    running = false;
  };

  const url = await createDatabase(DEFAULT_DATABASE);
  return {
    url,
    port,
    dir,
    logFile,
    urlFor,
    createDatabase,
    sql,
    async terminateBackends(database) {
      const rows = await sql<{ n: number }>(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND ($1::text IS NULL OR datname = $1)`,
        [database ?? null],
      );
      return rows[0].n;
    },
    postmasterPid() {
      try {
        return Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]) || undefined;
      } catch {
        return undefined;
      }
    },
    stopServer,
    startServer: async () => {
      if (!running) await pgCtlStart();
    },
    async restart(mode: ShutdownMode = 'fast') {
      await server('pg_ctl', ['restart', '-w', '-t', '60', '-D', dataDir, '-m', mode, '-l', logFile, '-s']);
      running = true;
    },
    async stop() {
      await stopServer('immediate').catch(() => {});
      killOnExit();
      process.removeListener('exit', killOnExit);
    },
  };
}
