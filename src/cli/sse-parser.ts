/**
 * A line-based Server-Sent Events parser (the WHATWG event-stream rules we need): feed it text
 * chunks as they arrive, in any split; it answers the events completed by each chunk. Comments
 * (`: ping`) come back as `{ comment }` so a caller can tell the stream is alive.
 */

export interface SseEvent {
  event: string;
  data: string;
  /** the last `id:` seen on the stream so far (ids persist across events, as in EventSource) */
  id: string | undefined;
  retry?: number;
}

export type SseMessage = SseEvent | { comment: string };

export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private retry: number | undefined;
  /** the id to send as Last-Event-ID on reconnect */
  lastEventId: string | undefined;

  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    let nl: RegExpExecArray | null;
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    while ((nl = lineEnd.exec(this.buffer))) {
      // A lone \r at the end may be the first half of \r\n: wait for the next chunk.
      if (nl[0] === '\r' && nl.index === this.buffer.length - 1) break;
      const message = this.line(this.buffer.slice(start, nl.index));
      if (message) out.push(message);
      start = nl.index + nl[0].length;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return { comment: line.slice(1).trimStart() };
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    const hasData = this.data.length > 0;
    const event: SseEvent = { event: this.event || 'message', data: this.data.join('\n'), id: this.lastEventId };
    if (this.retry !== undefined) event.retry = this.retry;
    this.event = '';
    this.data = [];
    this.retry = undefined;
    return hasData ? event : undefined;
  }
}
