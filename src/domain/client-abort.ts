/**
 * Whether a request failed because its client went away (closed the connection mid-body, or
 * aborted the request) rather than because of the server. Such failures are the client's
 * business: logged below error level, and nothing is answered, since nobody is listening.
 */
export function clientWentAway(err: unknown, requestAborted: boolean): boolean {
  if (requestAborted) return true;
  if (typeof err !== 'object' || err === null) return false;
  const { code, message, name } = err as { code?: unknown; message?: unknown; name?: unknown };
  // Node's IncomingMessage emits Error('aborted') with ECONNRESET when the socket closes mid-body
  if (code === 'ECONNRESET' && message === 'aborted') return true;
  // the same, seen through a web stream that read the body
  if (code === 'ERR_STREAM_PREMATURE_CLOSE') return true;
  return name === 'AbortError';
}
