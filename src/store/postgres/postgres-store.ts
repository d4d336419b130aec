import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Logger } from 'pino';
import { driveAsync, singleStatementOf, textFor, type Op, type Statement } from '../op.js';
import type { NewItem, Store } from '../store.js';
import { copyRow, numberPlaceholders } from './sql-text.js';
import { isUnavailable, unavailableOr } from './unavailable.js';

/**
 * The PostgreSQL adapter, for several API replicas and dispatchers on one database. Each
 * operation runs on one pooled connection between BEGIN and COMMIT, its statements one after
 * the other; a read runs on a REPEATABLE READ READ ONLY snapshot, so PostgreSQL itself refuses
 * a write in it (a read that is one plain SELECT is sent alone: see readOne). Failures that mean "unreachable, restarting, out of connections" become
 * StoreUnavailableError (the API answers 503); a connection that broke is destroyed, never
 * handed to the next request. Settings: docs/operations.md#postgresql.
 *
 * Unlike SQLite, PostgreSQL aborts the whole transaction at its first failed statement: an
 * operation that catches a statement's error and goes on gets "current transaction is
 * aborted" for its next statement. Operations check first (a SELECT, ON CONFLICT) instead.
 */

export interface PostgresSettings {
  /** postgres://user:password@host:port/db?sslmode=…; TLS options as node-postgres reads them */
  url: string;
  /** most connections this process opens */
  poolSize: number;
  /** the server cancels a statement running longer (statement_timeout) */
  statementTimeoutMs: number;
  /** longest wait to open a connection, or for a free one when all are busy */
  connectTimeoutMs: number;
}

const BEGIN_READ = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';
const BEGIN_WRITE = 'BEGIN';
const COPY_ITEMS = 'COPY items (batch_id, idx, custom_id, input, status) FROM STDIN';
/** COPY data is sent in chunks of about this many characters: memory stays flat whatever the row count. */
const COPY_CHUNK_CHARS = 64 * 1024;

const NUMBERED_TEXTS_KEPT = 5000;

const INT8_OID = 20;
const NUMERIC_OID = 1700;
const BOOL_OID = 16;

/**
 * Rows as SQLite gives them: bigint (int8) and numeric values as JS numbers instead of strings
 * (epoch ms, counters and count(*) all fit in 2^53), a computed boolean as 1/0.
 */
const SQLITE_LIKE_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary') {
      if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
      if (oid === BOOL_OID) return (value: string) => (value === 't' ? 1 : 0);
    }
    return pg.types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  readonly pool: pg.Pool;
  private readonly numbered = new Map<string, string>();
  private readonly poolSize: number;
  private closed = false;

  constructor(settings: PostgresSettings, logger?: Pick<Logger, 'warn'>) {
    this.poolSize = settings.poolSize;
    this.pool = new pg.Pool({
      connectionString: settings.url,
      max: settings.poolSize,
      // pg-pool applies it to opening a connection and to waiting for a free one
      connectionTimeoutMillis: settings.connectTimeoutMs,
      statement_timeout: settings.statementTimeoutMs,
      // the client gives up too when the server cannot even answer (a dead host, a cut network)
      query_timeout: settings.statementTimeoutMs + settings.connectTimeoutMs,
      keepAlive: true,
      application_name: 'fanout',
      types: SQLITE_LIKE_TYPES,
    });
    // An idle connection that breaks (PostgreSQL restarted, a proxy cut it) is reported here;
    // without a listener that would be an uncaught 'error' and end the process. The pool has
    // already dropped it: the next request opens a new one.
    this.pool.on('error', (err) => {
      logger?.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'an idle PostgreSQL connection failed; the pool replaces it');
    });
    // Every connection is listened to for its whole life. pg-pool stops listening as it hands a
    // connection out, and a Session starts only when the pool's promise resolves, a microtask
    // later: an error parsed from the same socket read as the ReadyForQuery that completed a new
    // connection (a backend terminated as it started) was an uncaught 'error' that ended the
    // process. Session reads what was caught here.
    this.pool.on('connect', (client) => client.on('error', (err) => connectionFailures.set(client, err)));
  }

  read<T>(op: Op<T>): Promise<T> {
    const single = singleStatementOf(op);
    if (single && single.kind !== 'dialect' && single.kind !== 'run' && isPlainSelect(textFor(single.text, 'postgres'))) {
      return driveAsync(op, (s) => this.readOne(s));
    }
    return this.transaction(BEGIN_READ, (client) => driveAsync(op, (s) => this.execute(client, s)));
  }

  /**
   * A read that is one SELECT, sent alone: one statement is one snapshot, so BEGIN and COMMIT
   * would only add two round trips (a status GET was three where a bare pg server sends one).
   * A pooled connection found broken is replaced as in begin(): the statement read nothing.
   */
  private async readOne(s: Statement): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      const session = await this.checkout();
      let failure: unknown;
      try {
        return await this.execute(session.client, s);
      } catch (err) {
        failure = err;
        if (attempt > this.poolSize || !isUnavailable(err)) throw unavailableOr(err);
      } finally {
        session.release(failure);
      }
    }
  }

  write<T>(op: Op<T>): Promise<T> {
    return this.transaction(BEGIN_WRITE, (client) => driveAsync(op, (s) => this.execute(client, s)));
  }

  /** One COPY, in a transaction of its own so that it starts on a connection known to work (see begin). */
  appendItems(batchId: string, firstIndex: number, rows: readonly NewItem[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    return this.transaction(BEGIN_WRITE, async (client) => {
      await pipeline(Readable.from(itemChunks(batchId, firstIndex, rows)), client.query(copyFrom(COPY_ITEMS)));
    });
  }

  /** Through begin() like any call: a pooled connection that died while idle does not fail readiness. */
  async ping(): Promise<void> {
    await this.transaction(BEGIN_READ, (client) => client.query('SELECT 1'));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  /** `work` between BEGIN and COMMIT; ROLLBACK on any error, and the connection destroyed if it broke. */
  private async transaction<T>(begin: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const session = await this.begin(begin);
    let failure: unknown;
    try {
      const result = await work(session.client);
      await session.client.query('COMMIT');
      return result;
    } catch (err) {
      failure = err;
      if (!session.broken && !isUnavailable(err)) {
        // A failed COMMIT has already ended the transaction; ROLLBACK then only warns.
        await session.client.query('ROLLBACK').catch((rollbackError: Error) => (session.broken = rollbackError));
      }
      throw unavailableOr(err);
    } finally {
      session.release(failure);
    }
  }

  /**
   * A connection with its transaction begun. Pooled connections can have died while idle
   * without the pool knowing yet (a restart, a terminated backend): when BEGIN finds one
   * broken, nothing ran, so it is destroyed and the next one tried. After at most every pooled
   * connection, the pool opens a new one, or reports that it cannot.
   */
  private async begin(begin: string): Promise<Session> {
    for (let attempt = 1; ; attempt++) {
      const session = await this.checkout();
      try {
        await session.client.query(begin);
        return session;
      } catch (err) {
        session.release(err);
        if (attempt > this.poolSize || !isUnavailable(err)) throw unavailableOr(err);
      }
    }
  }

  private async checkout(): Promise<Session> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw unavailableOr(err);
    }
    return new Session(client);
  }

  private async execute(client: pg.PoolClient, s: Statement): Promise<unknown> {
    if (s.kind === 'dialect') return 'postgres';
    const text = this.postgresText(textFor(s.text, 'postgres'));
    const values = s.params.map(bindable);
    if (s.kind === 'pluck') {
      const result = await client.query({ text, values, rowMode: 'array' });
      return (result.rows as unknown[][]).map((row) => row[0]);
    }
    const result = await client.query(text, values);
    switch (s.kind) {
      case 'all':
        return result.rows;
      case 'get':
        return result.rows[0];
      case 'run':
        return result.rowCount ?? 0;
    }
  }

  /**
   * `?` numbered as `$1…$n`, once per distinct text: operations reuse a few hundred texts. Texts
   * built at run time (an `IN (?, ?, …)` per list length) could grow the cache without end, so
   * past a bound it starts over.
   */
  private postgresText(text: string): string {
    let numbered = this.numbered.get(text);
    if (numbered === undefined) {
      numbered = numberPlaceholders(text);
      if (this.numbered.size >= NUMBERED_TEXTS_KEPT) this.numbered.clear();
      this.numbered.set(text, numbered);
    }
    return numbered;
  }
}

/**
 * A SELECT that takes no row locks: sent outside a transaction block it changes nothing (a
 * locking read, or anything else, goes through the READ ONLY transaction, which refuses writes).
 */
function isPlainSelect(text: string): boolean {
  return /^\s*SELECT\b/i.test(text) && !/\bFOR\s+(UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b/i.test(text);
}

/** The error each broken connection reported (see the pool's 'connect' listener). */
const connectionFailures = new WeakMap<pg.Client, Error>();

/** A checked-out connection, and whether it broke while out. */
class Session {
  private rollbackFailure: Error | undefined;

  constructor(readonly client: pg.PoolClient) {}

  /** The connection's own error, or a ROLLBACK that failed: either way it must not be reused. */
  get broken(): Error | undefined {
    return this.rollbackFailure ?? connectionFailures.get(this.client);
  }

  set broken(err: Error | undefined) {
    this.rollbackFailure = err;
  }

  /** Back to the pool, or destroyed when the connection broke or its state is unknown. */
  release(failure: unknown): void {
    const destroy = this.broken ?? (failure !== undefined && isUnavailable(failure) ? (failure as Error) : undefined);
    this.client.release(destroy ?? false);
  }
}

/** As the SQLite adapter binds them: booleans as 1/0 (the schema has no boolean column), undefined as null. */
function bindable(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value === undefined ? null : value;
}

/** The rows of one appendItems call as COPY text, a chunk at a time. */
function* itemChunks(batchId: string, firstIndex: number, rows: readonly NewItem[]): Generator<string> {
  let chunk = '';
  for (let k = 0; k < rows.length; k++) {
    chunk += copyRow([batchId, firstIndex + k, rows[k].customId, rows[k].input, 'pending']);
    if (chunk.length >= COPY_CHUNK_CHARS) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk !== '') yield chunk;
}
