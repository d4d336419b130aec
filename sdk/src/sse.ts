import { textChunks } from './lines.js';

/**
 * Server-Sent Events (the WHATWG event-stream rules a client needs): a push parser that takes
 * text chunks split anywhere, and `parseEventStream` over a response body built on it.
 */

/** One dispatched event: its `event:` name (default `message`) and its joined `data:` lines. */
export interface ServerSentEvent {
  event: string;
  data: string;
  /** the last `id:` seen on the stream so far (ids persist across events, as in EventSource) */
  id: string | undefined;
  /** the `retry:` (reconnection time, ms) sent with this event, if any */
  retry?: number;
}

/** What the parser answers: events, and comments (`: ping`) so a caller can tell the stream is alive. */
export type ServerSentMessage = ServerSentEvent | { comment: string };

export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private retry: number | undefined;
  /** the id to send as Last-Event-ID on reconnect */
  lastEventId: string | undefined;

  /** Feeds a chunk of text; answers the events and comments it completed. */
  push(chunk: string): ServerSentMessage[] {
    this.buffer += chunk;
    const out: ServerSentMessage[] = [];
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    let nl: RegExpExecArray | null;
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

  private line(line: string): ServerSentMessage | undefined {
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

  /** A blank line ends an event; one without data is dropped. */
  private dispatch(): ServerSentEvent | undefined {
    const hasData = this.data.length > 0;
    const event: ServerSentEvent = { event: this.event || 'message', data: this.data.join('\n'), id: this.lastEventId };
    if (this.retry !== undefined) event.retry = this.retry;
    this.event = '';
    this.data = [];
    this.retry = undefined;
    return hasData ? event : undefined;
  }
}

/**
 * The events of a text/event-stream body as they arrive (comments skipped). An event left
 * unfinished when the body ends is dropped, as the spec says. The body is cancelled when the
 * consumer stops early.
 */
export async function* parseEventStream(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const parser = new SseParser();
  for await (const text of textChunks(body)) {
    for (const message of parser.push(text)) if ('event' in message) yield message;
  }
}
