import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';

/**
 * Requests Node's HTTP parser refuses before the app sees them: a request line and headers over
 * its limit (16 KiB, e.g. a very long query string) answer 431 as problem+json, like every other
 * error of the API (declared once for every operation in openapi.yaml); anything else it cannot
 * parse answers a bare 400, as Node does by default.
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) return void socket.destroy();
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    const body = JSON.stringify({
      type: 'https://fanout.dev/problems/headers-too-large',
      title: 'Request Header Fields Too Large',
      status: 431,
      detail: 'the request line and headers are over 16 KiB; a long query (labelSelector, cursor) is the usual cause',
    });
    socket.end(
      `HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${randomUUID()}\r\nconnection: close\r\n\r\n${body}`,
    );
    return;
  }
  socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
}
