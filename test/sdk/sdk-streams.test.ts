import { describe, expect, it } from 'vitest';
import { createFanoutClient, FanoutProblemError, parseEventStream, readLines, type BatchProgress } from '../../sdk/src/index.js';

/** A body that delivers `chunks` one read at a time, as a slow network would. */
function chunked(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(enc.encode(chunks[i++]));
      else controller.close();
    },
  });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const counts = { total: 2, pending: 0, running: 0, succeeded: 2, failed: 0, cancelled: 0 };

/** Line splitting and event-stream parsing, pure: chunk boundaries anywhere, CRLF, no trailing newline. */
describe('readLines', () => {
  const cases: { name: string; chunks: string[]; lines: string[] }[] = [
    { name: 'one chunk, trailing newline', chunks: ['a\nb\n'], lines: ['a', 'b'] },
    { name: 'line split across chunks', chunks: ['{"ind', 'ex":0}\n{"index"', ':1}\n'], lines: ['{"index":0}', '{"index":1}'] },
    { name: 'last line without newline', chunks: ['a\nb'], lines: ['a', 'b'] },
    { name: 'CRLF, CR split from LF', chunks: ['a\r', '\nb\r\n'], lines: ['a', 'b'] },
    { name: 'empty lines kept', chunks: ['\n\nx\n'], lines: ['', '', 'x'] },
    { name: 'multi-byte character split across chunks', chunks: ['"\u00e9'.slice(0, 1), '\u00e9"\n'], lines: ['"\u00e9"'] },
    { name: 'empty body', chunks: [], lines: [] },
  ];
  for (const c of cases) it(c.name, async () => expect(await collect(readLines(chunked(c.chunks)))).toEqual(c.lines));

  it('splits a UTF-8 sequence cut between two reads', async () => {
    const bytes = new TextEncoder().encode('h\u00e9\n');
    let i = 0;
    const parts = [bytes.slice(0, 2), bytes.slice(2)];
    const body = new ReadableStream<Uint8Array>({ pull: (c) => (i < parts.length ? c.enqueue(parts[i++]) : c.close()) });
    expect(await collect(readLines(body))).toEqual(['h\u00e9']);
  });
});

describe('parseEventStream', () => {
  it('reads named events, joined data lines, ids, and skips comments and dataless events', async () => {
    const events = await collect(
      parseEventStream(chunked([': ping\n\nevent: progress\nda', 'ta: {"a":1}\nid: 7\n\n', 'event: empty\n\ndata: x\ndata:y\n\n'])),
    );
    expect(events).toEqual([
      { event: 'progress', data: '{"a":1}', id: '7' },
      { event: 'message', data: 'x\ny', id: '7' },
    ]);
  });
});

/** waitForBatch over a server-sent event stream, and its fallback when the stream breaks. */
describe('waitForBatch with an event stream', () => {
  const batch = (phase: string) => ({ id: 'b1', status: { phase, counts } });
  function fakeServer(events: string[], status = 200) {
    const requests: string[] = [];
    const fetchFn = async (req: Request): Promise<Response> => {
      const url = new URL(req.url);
      requests.push(url.pathname);
      expect(req.headers.get('authorization')).toBe('Bearer k');
      if (url.pathname.endsWith('/events')) {
        return new Response(chunked(events), { status, headers: { 'content-type': 'text/event-stream' } });
      }
      return Response.json(batch('Succeeded'));
    };
    return { requests, client: createFanoutClient({ baseUrl: 'http://fanout.test/', apiKey: 'k', fetch: fetchFn }) };
  }

  it('reports progress events and resolves with the batch on done, without polling', async () => {
    const running = JSON.stringify({ phase: 'Running', counts: { ...counts, succeeded: 1, running: 1 } });
    const { client, requests } = fakeServer([
      `event: progress\ndata: ${running}\nid: 1\n\n: ping\n\n`,
      `event: done\ndata: ${JSON.stringify({ phase: 'Succeeded', counts })}\n\n`,
    ]);
    const seen: BatchProgress[] = [];
    const done = await client.waitForBatch('b1', { onProgress: (p) => seen.push(p) });
    expect(done.status.phase).toBe('Succeeded');
    expect(seen.map((p) => p.phase)).toEqual(['Running', 'Succeeded']);
    expect(requests).toEqual(['/v1/batches/b1/events', '/v1/batches/b1']);
  });

  it('falls back to polling when the stream ends without done', async () => {
    const { client, requests } = fakeServer([`event: progress\ndata: ${JSON.stringify({ phase: 'Running', counts })}\n\n`]);
    const done = await client.waitForBatch('b1', { pollMs: 1 });
    expect(done.status.phase).toBe('Succeeded');
    expect(requests).toEqual(['/v1/batches/b1/events', '/v1/batches/b1']);
  });

  it('falls back to polling when the endpoint answers with something other than an event stream', async () => {
    const { client, requests } = fakeServer([], 404);
    expect((await client.waitForBatch('b1', { pollMs: 1 })).status.phase).toBe('Succeeded');
    expect(requests).toEqual(['/v1/batches/b1/events', '/v1/batches/b1']);
  });
});

describe('FanoutProblemError', () => {
  it('carries a non-JSON error answer as a problem too', async () => {
    const client = createFanoutClient({
      baseUrl: 'http://fanout.test',
      apiKey: 'k',
      fetch: async () => new Response('bad gateway', { status: 502, statusText: 'Bad Gateway', headers: { 'content-type': 'text/plain' } }),
    });
    const err = await client.getBatch('b1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FanoutProblemError);
    expect(err).toMatchObject({ status: 502, title: 'Bad Gateway', detail: 'bad gateway', errors: [] });
  });

  const answers: Array<{ name: string; body: string; type?: string; want: Record<string, unknown> }> = [
    {
      name: 'a problem: its fields, its field errors (malformed entries dropped), the HTTP status',
      body: JSON.stringify({ type: 'https://fanout.dev/problems/x', title: 'Invalid', status: 400, detail: 'two', errors: [{ pointer: '/a', detail: 'bad' }, { pointer: '/b' }] }),
      type: 'application/problem+json',
      want: { status: 422, type: 'https://fanout.dev/problems/x', title: 'Invalid', detail: 'two', errors: [{ pointer: '/a', detail: 'bad' }] },
    },
    { name: 'a problem without detail or type', body: '{"title":"Conflict"}', type: 'application/problem+json', want: { status: 422, type: 'about:blank', title: 'Conflict', detail: '' } },
    { name: 'JSON that is not a problem: its text is the detail', body: '{"error":"nope"}', type: 'application/json', want: { title: 'Unprocessable Entity', detail: '{"error":"nope"}' } },
    { name: 'a page of text: its first line', body: '\n<h1>proxy error</h1>\n<p>more</p>', type: 'text/html', want: { title: 'Unprocessable Entity', detail: '<h1>proxy error</h1>' } },
    { name: 'an empty answer', body: '', type: 'text/plain', want: { title: 'Unprocessable Entity', detail: 'HTTP 422' } },
  ];
  for (const a of answers) {
    it(`turns ${a.name} into a FanoutProblemError`, async () => {
      const client = createFanoutClient({
        baseUrl: 'http://fanout.test',
        fetch: async () => new Response(a.body, { status: 422, statusText: 'Unprocessable Entity', headers: { 'content-type': a.type ?? 'text/plain' } }),
      });
      for (const call of [() => client.getBatch('b1'), () => client.deleteBatch('b1'), () => client.openResults('b1')]) {
        const err = await call().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(FanoutProblemError);
        expect(err).toMatchObject(a.want);
      }
    });
  }
});
