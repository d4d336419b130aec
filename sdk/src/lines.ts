/**
 * Splits a byte stream into text lines as it arrives: only the current partial line is kept
 * between chunks, so a body of any size is never held whole. Accepts LF and CRLF; a last line
 * without a newline is still yielded. The reader is released (and the body cancelled) when the
 * consumer stops early.
 */
export async function* readLines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let partial = '';
  for await (const text of textChunks(body)) {
    partial += text;
    let start = 0;
    let nl: number;
    while ((nl = partial.indexOf('\n', start)) >= 0) {
      const line = partial.slice(start, nl);
      start = nl + 1;
      yield line.endsWith('\r') ? line.slice(0, -1) : line;
    }
    partial = partial.slice(start);
  }
  if (partial.length > 0) yield partial.endsWith('\r') ? partial.slice(0, -1) : partial;
}

/**
 * The text of a byte stream, decoded as UTF-8 chunk by chunk as it arrives (a character split
 * across chunks is held until complete). The reader is released, and the body cancelled when
 * the consumer stops before the end.
 */
export async function* textChunks(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let done = false;
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) {
        done = true;
        break;
      }
      const text = decoder.decode(chunk.value, { stream: true });
      if (text) yield text;
    }
    const tail = decoder.decode();
    if (tail) yield tail;
  } finally {
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
