/**
 * Store operations are written once, as generators: an operation yields the SQL statements it
 * needs and receives each one's result. Each adapter drives them its own way: SQLite
 * synchronously inside one better-sqlite3 transaction, PostgreSQL asynchronously on one pooled
 * connection between BEGIN and COMMIT. So every state transition lives in src/store, once, and
 * runs atomically on either database. The port: docs/architecture.md#the-store-port.
 *
 * Statements use `?` placeholders on both dialects (the PostgreSQL adapter numbers them).
 */

export type Dialect = 'sqlite' | 'postgres';

/** The same text for both dialects, or one each where their SQL differs (JSON functions, say). */
export type SqlText = string | { readonly sqlite: string; readonly postgres: string };

export type StatementKind = 'all' | 'get' | 'pluck' | 'run';

export type Statement =
  | { readonly kind: StatementKind; readonly text: SqlText; readonly params: readonly unknown[] }
  | { readonly kind: 'dialect' };

/** An operation returning T. Compose with `yield*`; run with `store.read(op)` or `store.write(op)`. */
export type Op<T> = Generator<Statement, T, unknown>;

/**
 * Operations that are one statement and nothing else (what `all`, `get` and `pluck` return when
 * an operation is no more than that call): an adapter may run such a read without a transaction
 * block, one statement being one snapshot already.
 */
const singleStatements = new WeakMap<Op<unknown>, Statement>();

/** The statement of an operation that is exactly one statement, or undefined. */
export function singleStatementOf(op: Op<unknown>): Statement | undefined {
  return singleStatements.get(op);
}

function single<T>(statement: Statement): Op<T> {
  const op = (function* () {
    return (yield statement) as T;
  })();
  singleStatements.set(op, statement);
  return op;
}

/** Every row. */
export function all<T>(text: SqlText, ...params: unknown[]): Op<T[]> {
  return single<T[]>({ kind: 'all', text, params });
}

/** The first row, or undefined. */
export function get<T>(text: SqlText, ...params: unknown[]): Op<T | undefined> {
  return single<T | undefined>({ kind: 'get', text, params });
}

/** The first column of every row. */
export function pluck<T>(text: SqlText, ...params: unknown[]): Op<T[]> {
  return single<T[]>({ kind: 'pluck', text, params });
}

/** The first column of the first row, or undefined. */
export function* value<T>(text: SqlText, ...params: unknown[]): Op<T | undefined> {
  const values = (yield { kind: 'pluck', text, params }) as T[];
  return values[0];
}

/** Runs a statement that changes rows; the number of rows it changed. */
export function* run(text: SqlText, ...params: unknown[]): Op<number> {
  return (yield { kind: 'run', text, params }) as number;
}

/** Which database runs the operation (for the few paths with a faster form on one of them). */
export function* dialect(): Op<Dialect> {
  return (yield { kind: 'dialect' }) as Dialect;
}

export function textFor(text: SqlText, d: Dialect): string {
  return typeof text === 'string' ? text : text[d];
}

/** Wraps a value as an operation (an operation that needs no statement). */
// eslint-disable-next-line require-yield
export function* constant<T>(v: T): Op<T> {
  return v;
}

/** Drives an operation synchronously: each statement is executed by `exec` as it is yielded. */
export function driveSync<T>(op: Op<T>, exec: (s: Statement) => unknown): T {
  let step = op.next();
  while (!step.done) {
    let result: unknown;
    try {
      result = exec(step.value);
    } catch (err) {
      step = op.throw(err);
      continue;
    }
    step = op.next(result);
  }
  return step.value;
}

/** Drives an operation whose statements execute asynchronously (one after the other). */
export async function driveAsync<T>(op: Op<T>, exec: (s: Statement) => Promise<unknown>): Promise<T> {
  let step = op.next();
  while (!step.done) {
    let result: unknown;
    try {
      result = await exec(step.value);
    } catch (err) {
      step = op.throw(err);
      continue;
    }
    step = op.next(result);
  }
  return step.value;
}
