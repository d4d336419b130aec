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

/** Every row. */
export function* all<T>(text: SqlText, ...params: unknown[]): Op<T[]> {
  return (yield { kind: 'all', text, params }) as T[];
}

/** The first row, or undefined. */
export function* get<T>(text: SqlText, ...params: unknown[]): Op<T | undefined> {
  return (yield { kind: 'get', text, params }) as T | undefined;
}

/** The first column of every row. */
export function* pluck<T>(text: SqlText, ...params: unknown[]): Op<T[]> {
  return (yield { kind: 'pluck', text, params }) as T[];
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
