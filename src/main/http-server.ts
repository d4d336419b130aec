import type { Server as HttpServer } from 'node:http';
import { serve, type ServerType } from '@hono/node-server';
import { answerClientError } from './client-error.js';
import type { HttpTimeouts } from '../config/config.js';
import { settledBefore, soonerOf, type StopContext } from '../lifecycle/stop-context.js';

/**
 * The API's HTTP server, with the limits that keep slow clients from holding connections
 * (docs/operations.md "Slow clients"):
 * - headers must arrive within `headersTimeoutMs`, the whole request within `requestTimeoutMs`
 *   (Node answers 408 and closes); a response being streamed is not a request, so event streams
 *   and downloads are never cut by these;
 * - a connection silent in both directions for `idleTimeoutMs` is closed. Uploads and downloads
 *   that keep moving, and event streams (a heartbeat every FANOUT_EVENTS_HEARTBEAT_MS), are not.
 */
export async function listen(fetch: (req: Request) => Response | Promise<Response>, host: string, port: number, t: HttpTimeouts): Promise<HttpServer> {
  const server = await new Promise<ServerType>((resolve, reject) => {
    // A port in use is a start-up failure to report in one line, not an unhandled 'error' event.
    const refused = (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'the address is already in use' : err.message}`));
    const s = serve(
      {
        fetch,
        port,
        hostname: host,
        serverOptions: {
          headersTimeout: t.headersTimeoutMs,
          requestTimeout: t.requestTimeoutMs,
          // Node checks both timeouts on this interval (default 30 s, far coarser than the limits)
          connectionsCheckingInterval: checkingIntervalMs(t),
        },
      },
      () => {
        s.off('error', refused);
        s.on('clientError', answerClientError);
        resolve(s);
      },
    );
    s.once('error', refused);
  });
  const http = server as HttpServer;
  // no 'timeout' listener: Node destroys the socket
  http.setTimeout(t.idleTimeoutMs);
  return http;
}

function checkingIntervalMs(t: HttpTimeouts): number {
  const shortest = Math.min(t.headersTimeoutMs, t.requestTimeoutMs || Infinity);
  return Math.max(250, Math.min(5000, Math.floor(shortest / 4)));
}

/** Requests in flight get this long to finish after the listener closes; streams (SSE) are then cut. */
const HTTP_DRAIN_MS = 2000;

/**
 * Stops listening and closes idle keep-alive connections at once; requests in flight get
 * HTTP_DRAIN_MS (less if the drain ends sooner); whatever is still open then (event streams,
 * slow downloads) is closed, so that server.close() never waits for a client.
 */
export async function closeHttpServer(http: HttpServer, ctx: StopContext): Promise<void> {
  const closed = new Promise<void>((resolve) => http.close(() => resolve()));
  http.closeIdleConnections();
  if (!(await settledBefore(closed, soonerOf(ctx.drain, HTTP_DRAIN_MS)))) {
    http.closeAllConnections();
    await settledBefore(closed, AbortSignal.timeout(1000));
  }
}
