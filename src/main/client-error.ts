import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';

/**
 * Requests Node's HTTP parser refuses before the app sees them: a request line and headers over
 * its limit (16 KiB, e.g. a very long query string) answer 431, and a request that did not
 * arrive within the HTTP timeouts 408, as problem+json like every other error of the API (431 is
 * declared once for every operation in openapi.yaml); anything else it cannot parse answers a
 * bare 400, as Node does by default.
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  // The peer is gone, or a response is already under way on this connection (Node's own check,
  // on the response it attaches to the socket): no status line can be written any more.
  const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || current?.headersSent) return void socket.destroy();
  const known = CLIENT_ERRORS[err.code ?? ''];
  if (!known) return void socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  const [status, reason, slug, detail] = known;
  const body = JSON.stringify({ type: `https://fanout.dev/problems/${slug}`, title: reason, status, detail });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${randomUUID()}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/**
 * The parser errors Node answers with a status of its own when no 'clientError' listener is
 * installed; with one installed (this), they must be answered here or the client gets 400.
 */
const CLIENT_ERRORS: Record<string, [number, string, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'headers-too-large', 'the request line and headers are over 16 KiB; a long query (labelSelector, cursor) is the usual cause'],
  // FANOUT_HTTP_HEADERS_TIMEOUT_SECONDS / FANOUT_HTTP_REQUEST_TIMEOUT_SECONDS (src/main/http-server.ts)
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'request-timeout', 'the request headers or body did not arrive in time'],
};
