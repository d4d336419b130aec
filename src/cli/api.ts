import { createFanoutClient, type FanoutClient } from '../../sdk/src/index.js';

/**
 * The CLI's way to the Fanout API: the TypeScript SDK (`sdk/`, imported from its sources, which
 * compile into dist/sdk/src beside the CLI's own; see scripts/build.mjs), plus what a command
 * line adds at this boundary: the server URL checked before any request, and a request that got
 * no answer at all turned into {@link ServerUnreachableError} with a reason a user can act on.
 * An answer with an error status is the SDK's FanoutProblemError.
 */

export { FanoutProblemError, isFinalPhase, SseParser } from '../../sdk/src/index.js';
export type { Batch, BatchPhase, BatchSpec, FanoutClient, Item, ItemAttempt, ItemStatus, Schedule, WebhookDelivery, WebhookEndpoint } from '../../sdk/src/index.js';

/** No HTTP answer: connection refused, unknown host, reset, timeout. */
export class ServerUnreachableError extends Error {
  readonly server: string;
  readonly code: string | undefined;

  constructor(server: string, reason: string, code?: string) {
    super(`cannot reach the Fanout API at ${server}: ${reason}`);
    this.name = 'ServerUnreachableError';
    this.server = server;
    this.code = code;
  }
}

export interface ClientOptions {
  /** base URL of the API, e.g. `http://127.0.0.1:8080` (a path prefix is kept) */
  server: string;
  /** sent as `Authorization: Bearer <apiKey>` when set */
  apiKey?: string;
}

/** An SDK client for one command run; throws {@link ServerUnreachableError} for a server URL that cannot work. */
export function connect(options: ClientOptions): FanoutClient {
  let base: URL;
  try {
    base = new URL(options.server);
  } catch {
    throw new ServerUnreachableError(options.server, 'not a valid URL (expected e.g. http://127.0.0.1:8080)');
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new ServerUnreachableError(options.server, 'the server URL must start with http:// or https://');
  }
  return createFanoutClient({
    baseUrl: options.server,
    apiKey: options.apiKey,
    fetch: async (request) => {
      try {
        return await fetch(request);
      } catch (err) {
        // An abort is the caller's own doing, not an unreachable server.
        if (request.signal.aborted) throw err;
        throw toUnreachable(options.server, err);
      }
    },
  });
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the server running? set --server or FANOUT_SERVER)',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed unexpectedly',
};

/** fetch rejects with `TypeError('fetch failed')` and hides the socket error in `cause`. */
export function toUnreachable(server: string, err: unknown): ServerUnreachableError {
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause !== undefined && !(cause as NodeJS.ErrnoException).code) {
    cause = cause.cause;
  }
  // Several addresses tried at once surface as an AggregateError of per-address errors.
  if (cause instanceof AggregateError && cause.errors.length > 0) cause = cause.errors[0];
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason = (code && NETWORK_REASONS[code]) ?? (cause instanceof Error ? cause.message : String(cause));
  return new ServerUnreachableError(server, reason, code);
}
