import type { Dialect, Op } from './op.js';

/**
 * The store port: every process reads and changes state only through it. Operations (src/store/*.ts)
 * are named generators written once; an adapter runs them on its database:
 * - SQLite (src/store/sqlite/), the embedded default: one file, better-sqlite3;
 * - PostgreSQL (src/store/postgres/), for several machines: a pg pool.
 * See docs/architecture.md#the-store-port.
 */
export interface Store {
  readonly dialect: Dialect;
  /**
   * Runs a read-only operation on one consistent snapshot. An operation that tries to write is
   * refused: a GET never writes.
   */
  read<T>(op: Op<T>): Promise<T>;
  /** Runs an operation as one transaction: all of it commits, or none of it. */
  write<T>(op: Op<T>): Promise<T>;
  /**
   * Appends items to a batch still `uploading` (NDJSON chunks, numbered from `firstIndex`), in
   * bulk: one transaction per call on SQLite, COPY on PostgreSQL.
   */
  appendItems(batchId: string, firstIndex: number, rows: readonly NewItem[]): Promise<void>;
  /** Resolves when the database answers (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** One item to insert: its JSON text and its optional customId. */
export interface NewItem {
  input: string;
  customId: string | null;
}

/**
 * The database cannot be reached or is restarting: the request may be tried again later (the
 * API answers 503 with Retry-After). Adapters turn their connection errors into this.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
