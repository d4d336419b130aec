import { StoreUnavailableError } from '../store.js';

/**
 * Which PostgreSQL failures mean "the database cannot be reached, is restarting or is full of
 * connections": the request may succeed later, so the API answers 503 with Retry-After. Every
 * other error (a constraint, a bad statement, a read-only transaction asked to write) is a
 * real answer and passes through unchanged.
 */

/** Socket errors of a server that is down, restarting or unreachable. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/** SQLSTATEs outside class 08 (connection exception) that say the same. */
const UNAVAILABLE_SQLSTATES = new Set([
  '57P01', // admin_shutdown: the server is stopping (or the backend was terminated)
  '57P02', // crash_shutdown: another backend crashed, the server restarts
  '57P03', // cannot_connect_now: the server is starting up or recovering
  '53300', // too_many_connections
]);

/**
 * node-postgres reports some of these only in its messages: the pool's wait for a free client
 * timed out, a connection closed under a query, a client already broken was used, the server
 * did not answer within query_timeout (statement timeout + connect timeout: it is not even
 * cancelling statements).
 */
const UNAVAILABLE_MESSAGES = [
  /timeout exceeded when trying to connect/i,
  /Connection terminated/i,
  /encountered a connection error and is not queryable/i,
  /Query read timeout/i,
];

export function isUnavailable(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code)) return true;
    if (/^08[0-9A-Z]{3}$/.test(code)) return true;
  }
  // Node's AggregateError from a host with several addresses (localhost: ::1 and 127.0.0.1).
  if (err instanceof AggregateError && err.errors.length > 0 && err.errors.every(isUnavailable)) return true;
  if (UNAVAILABLE_MESSAGES.some((re) => re.test(err.message))) return true;
  // drizzle (the migrator) wraps the driver's error as its cause
  return err.cause !== undefined && err.cause !== err && isUnavailable(err.cause);
}

/** The error to throw: a StoreUnavailableError wrapping `err` when the database is unavailable, else `err`. */
export function unavailableOr(err: unknown): unknown {
  if (err instanceof StoreUnavailableError || !isUnavailable(err)) return err;
  return new StoreUnavailableError(`PostgreSQL is unavailable: ${(err as Error).message || (err as { code?: string }).code}`, { cause: err });
}
