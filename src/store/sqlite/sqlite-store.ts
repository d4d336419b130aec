import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { packageRoot } from '../../package-root.js';
import { driveSync, singleStatementOf, textFor, type Op, type Statement } from '../op.js';
import { StoreUnavailableError, type NewItem, type Store } from '../store.js';
import { insertItems } from '../batch-create.js';

/**
 * The SQLite adapter: the embedded default, one file in WAL mode. Operations run synchronously
 * inside one better-sqlite3 transaction each (a read that is one SELECT without one), so nothing
 * else on this connection interleaves with them, and one writer at a time changes the file.
 * Writes are queued and run in short turns (see write). Statements are prepared once and cached
 * by their text.
 */

/** Longest run of queued writes before the event loop gets a turn (see SqliteStore.write). */
const WRITE_TURN_MS = 5;

export const SQLITE_MIGRATIONS = path.join(packageRoot, 'migrations', 'sqlite');

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  private readonly statements = new Map<string, Prepared>();
  private readonly readTx: (op: Op<unknown>) => unknown;
  private readonly writeTx: (op: Op<unknown>) => unknown;
  /** writes asked for and not yet run, in order (see write) */
  private readonly pendingWrites: Array<() => void> = [];
  private writeTurnScheduled = false;

  constructor(readonly sqlite: Database.Database) {
    this.readTx = sqlite.transaction((op: Op<unknown>) => driveSync(op, (s) => this.execute(s, true))).deferred;
    // Deferred, as reads: an operation that finds nothing to change (an empty outbox, a status
    // that did not move) takes no write lock, so it does not wait on a writer in another process.
    // The first write statement takes the lock (waiting up to busy_timeout).
    this.writeTx = sqlite.transaction((op: Op<unknown>) => driveSync(op, (s) => this.execute(s, false)));
  }

  read<T>(op: Op<T>): Promise<T> {
    try {
      // One SELECT is one snapshot already: BEGIN and COMMIT around it were about a third of a
      // status GET's time in the store (--cpu-prof of fanout up under bench D).
      // (Only all, get and pluck make single-statement operations; execute still refuses a write.)
      if (singleStatementOf(op)) return Promise.resolve(driveSync(op, (s) => this.execute(s, true)));
      return Promise.resolve(this.readTx(op) as T);
    } catch (err) {
      return Promise.reject(unavailableIfBusy(err));
    }
  }

  /**
   * Queued, and run in turns of at most WRITE_TURN_MS between which the event loop takes new
   * requests. Each write is a synchronous transaction: run as soon as asked, the writes of 50
   * concurrent creates (and the releases that follow them) ran back to back in one loop turn, and
   * a `/healthz` that arrived meanwhile waited for all of them (bench D: p50 77 ms, max 136 ms).
   * Writes keep their order; a read runs at once and sees what the writes before it committed.
   */
  write<T>(op: Op<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pendingWrites.push(() => this.writeNow(op).then(resolve, reject));
      if (!this.writeTurnScheduled) {
        this.writeTurnScheduled = true;
        setImmediate(this.writeTurn);
      }
    });
  }

  private readonly writeTurn = (): void => {
    const until = performance.now() + WRITE_TURN_MS;
    let next = 0;
    while (next < this.pendingWrites.length) {
      this.pendingWrites[next++]();
      if (performance.now() >= until) break;
    }
    this.pendingWrites.splice(0, next);
    if (this.pendingWrites.length > 0) setImmediate(this.writeTurn);
    else this.writeTurnScheduled = false;
  };

  /**
   * One write of the same insertItems a JSON create runs (prepared once, a row per statement), at
   * once rather than queued: an upload is paced by its own awaiting of each chunk, and a queued
   * chunk's rows lived a loop turn longer, enough for V8 to keep more of them (bench A's peak RSS
   * 148-151 MB at once, 158-166 MB queued).
   */
  appendItems(batchId: string, firstIndex: number, rows: readonly NewItem[]): Promise<void> {
    return this.writeNow(insertItems(batchId, firstIndex, rows));
  }

  private writeNow<T>(op: Op<T>): Promise<T> {
    try {
      return Promise.resolve(this.writeTx(op) as T);
    } catch (err) {
      return Promise.reject(unavailableIfBusy(err));
    }
  }

  ping(): Promise<void> {
    try {
      this.sqlite.prepare('SELECT 1').get();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(unavailableIfBusy(err));
    }
  }

  close(): Promise<void> {
    // Writes already asked for are not dropped: they run before the file is closed.
    for (const run of this.pendingWrites.splice(0)) run();
    this.sqlite.close();
    return Promise.resolve();
  }

  private execute(s: Statement, readOnly: boolean): unknown {
    if (s.kind === 'dialect') return 'sqlite';
    const text = textFor(s.text, 'sqlite');
    const key = s.kind === 'pluck' ? `pluck\u0000${text}` : text;
    let prepared = this.statements.get(key);
    if (!prepared) {
      prepared = prepare(this.sqlite, text, s.kind === 'pluck');
      this.statements.set(key, prepared);
    }
    const { stmt, rowOf } = prepared;
    if (readOnly && !stmt.readonly) throw new Error(`a read-only operation tried to write: ${text}`);
    const params = bindable(s.params);
    switch (s.kind) {
      case 'pluck':
        return stmt.all(...params);
      case 'all':
        return rowOf ? (stmt.all(...params) as unknown[][]).map(rowOf) : stmt.all(...params);
      case 'get': {
        const row = stmt.get(...params);
        return rowOf && row !== undefined ? rowOf(row as unknown[]) : row;
      }
      case 'run':
        return stmt.run(...params).changes;
    }
  }
}

interface Prepared {
  stmt: Database.Statement;
  /** for a statement returning rows: its row (an array, in raw mode) as an object keyed by column name */
  rowOf?: (values: unknown[]) => Record<string, unknown>;
}

/**
 * A statement that returns rows runs in raw mode (arrays), and each array becomes an object in
 * JavaScript through a function made for the statement's columns: better-sqlite3 builds a row
 * object in C++ by setting each named property in turn, which took ~8 µs a row for the 15 columns
 * of an item (GET …/items?limit=100 spent 1.2 ms building rows, 0.4 ms here).
 */
function prepare(sqlite: Database.Database, text: string, pluck: boolean): Prepared {
  const stmt = sqlite.prepare(text);
  if (pluck) return { stmt: stmt.pluck() };
  if (!stmt.reader) return { stmt };
  const names = stmt.columns().map((c) => c.name);
  // Keys as JSON string literals (column aliases are our own SQL, but quoted all the same); with
  // a name twice the last value wins, as in the row objects better-sqlite3 builds.
  const body = `return {${names.map((name, k) => `${JSON.stringify(name)}: values[${k}]`).join(', ')}};`;
  return { stmt: stmt.raw(true), rowOf: new Function('values', body) as Prepared['rowOf'] };
}

/** better-sqlite3 binds numbers, strings, bigints, buffers and null; booleans become 0/1. */
function bindable(params: readonly unknown[]): unknown[] {
  let out: unknown[] | undefined;
  for (let k = 0; k < params.length; k++) {
    const p = params[k];
    if (typeof p === 'boolean' || p === undefined) {
      out ??= params.slice();
      out[k] = p === undefined ? null : p ? 1 : 0;
    }
  }
  return (out ?? params) as unknown[];
}

/** The write lock held past busy_timeout by another process: worth trying again later. */
function unavailableIfBusy(err: unknown): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return new StoreUnavailableError(`the SQLite file is busy: ${(err as Error).message}`, { cause: err });
  return err;
}

/** Opens (creating if needed) the SQLite file in WAL mode and applies pending migrations. */
export function openSqliteStore(file: string, opts: { migrate?: boolean } = {}): SqliteStore {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new Database(file);
  // The busy timeout first: switching a new file to WAL takes a lock, and several processes
  // opening it at once (replicas starting together) would otherwise fail at once with SQLITE_BUSY.
  sqlite.pragma('busy_timeout = 5000');
  switchToWal(sqlite);
  sqlite.pragma('synchronous = NORMAL');
  if (opts.migrate !== false) applySqliteMigrations(sqlite);
  sqlite.pragma('foreign_keys = ON');
  return new SqliteStore(sqlite);
}

/** How long a process opening the file waits for others to let it switch the file to WAL. */
const WAL_SWITCH_WAIT_MS = 10_000;

/**
 * Puts the file in WAL mode. The busy timeout does not cover every way the switch meets another
 * process: while one is switching or recovering a new file, SQLite answers SQLITE_BUSY at once
 * without calling the busy handler (CI saw one of six processes starting together fail so), or
 * leaves the mode as it was and says so in its answer. Both are tried again for a while; it is
 * start-up, so the process may wait synchronously.
 */
function switchToWal(sqlite: Database.Database): void {
  const deadline = Date.now() + WAL_SWITCH_WAIT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let mode: unknown;
    try {
      mode = sqlite.pragma('journal_mode = WAL', { simple: true });
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
    }
    if (typeof mode === 'string' && mode.toLowerCase() === 'wal') return;
    if (mode !== undefined && Date.now() >= deadline) throw new Error(`could not switch the SQLite file to WAL mode: it stays in '${String(mode)}' mode`);
    Atomics.wait(pause, 0, 0, 10 + Math.floor(Math.random() * 40));
  }
}

/**
 * Migrations run with foreign keys off: a drizzle-kit table rebuild (create a copy, drop the old
 * table, rename) would otherwise delete child rows through ON DELETE CASCADE when it drops the
 * old table. A dangling reference afterwards is fatal.
 */
export function applySqliteMigrations(sqlite: Database.Database): void {
  const db = drizzle(sqlite);
  sqlite.pragma('foreign_keys = OFF');
  try {
    migrate(db, { migrationsFolder: SQLITE_MIGRATIONS });
  } catch (err) {
    // Two processes starting on a new file (the API and dispatcher pods) can both find a
    // migration missing; the one that loses gets "table … already exists" and rolled back. By
    // then the winner has recorded it, so running them again finds nothing left to do.
    const cause = (err as { cause?: unknown }).cause;
    const text = `${(err as Error).message} ${cause instanceof Error ? cause.message : ''}`;
    if (!/already exists/.test(text)) throw err;
    migrate(db, { migrationsFolder: SQLITE_MIGRATIONS });
  }
  const broken = sqlite.pragma('foreign_key_check') as unknown[];
  if (broken.length > 0) throw new Error(`migration left ${broken.length} broken foreign keys`);
}
