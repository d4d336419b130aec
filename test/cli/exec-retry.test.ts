import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

/**
 * `fanout exec` against a stand-in API that fails on purpose (the real API is in
 * test/integration/exec.test.ts): 5xx and 429 are retried with backoff and Retry-After, other
 * answers are final. The stand-in answers GET …/input and PUT …/result from scripted lists.
 */

type Answer = { status: number; body?: string; headers?: Record<string, string> };
interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

async function scriptedApi(script: { get: Answer[]; put: Answer[] }): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() });
      const list = req.method === 'GET' ? script.get : script.put;
      const answer = list.length > 1 ? list.shift()! : list[0];
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, seen };
}

const env = (url: string) => ({ FANOUT_API_URL: url, FANOUT_BATCH_ID: 'b1', FANOUT_TOKEN: 'fbt_secret-token', JOB_COMPLETION_INDEX: '4', FANOUT_INDEX_OFFSET: '10' });
const problem = (status: number, detail: string): Answer => ({ status, body: JSON.stringify({ title: 'x', status, detail }), headers: { 'content-type': 'application/problem+json' } });

describe('fanout exec retries', () => {
  it('retries GET on 5xx and PUT on 429 (honouring Retry-After), then stores the result for the attempt it read', async () => {
    const api = await scriptedApi({
      get: [problem(503, 'store busy'), problem(502, 'bad gateway'), { status: 200, body: '"abc"', headers: { 'fanout-attempt': '3' } }],
      put: [{ ...problem(429, 'slow down'), headers: { 'retry-after': '1' } }, { status: 200, body: '{"recorded":true}' }],
    });
    const run = await runCli(['exec', '--', 'rev'], { env: env(api.url) });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^fanout exec: HTTP 503: store busy; retrying in \d\.\d s$/),
      expect.stringMatching(/^fanout exec: HTTP 502: bad gateway; retrying in \d\.\d s$/),
      'fanout exec: HTTP 429: slow down; retrying in 1.0 s',
    ]);
    expect(api.seen.map((r) => `${r.method} ${r.url}`)).toEqual([
      ...Array(3).fill('GET /v1/batches/b1/items/14/input'),
      ...Array(2).fill('PUT /v1/batches/b1/items/14/result'),
    ]);
    const puts = api.seen.filter((r) => r.method === 'PUT');
    expect(puts[1].at - puts[0].at).toBeGreaterThanOrEqual(950);
    for (const put of puts) {
      expect(put.body).toBe('cba');
      expect(put.headers).toMatchObject({ authorization: 'Bearer fbt_secret-token', 'fanout-attempt': '3', 'content-type': 'text/plain; charset=utf-8', 'content-length': '3' });
    }
    expect(run.stderr).not.toContain('secret-token');
  });

  it('a final refusal of the result (413) is not retried: exit 1 with the reason', async () => {
    const api = await scriptedApi({ get: [{ status: 200, body: '"abc"' }], put: [problem(413, 'the result is larger than the 10-byte limit')] });
    const run = await runCli(['exec', '--', 'rev'], { env: env(api.url) });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'fanout exec: could not store the result of item 14 of batch b1: PUT /v1/batches/b1/items/14/result answered HTTP 413: the result is larger than the 10-byte limit\n',
    );
    expect(api.seen.filter((r) => r.method === 'PUT')).toHaveLength(1);
    // without an attempt from the API, the PUT names none and the API takes the current one
    expect(api.seen.find((r) => r.method === 'PUT')!.headers['fanout-attempt']).toBeUndefined();
  });

  it('gives up when the budget is spent: exit 1, the last reason in one line', async () => {
    const api = await scriptedApi({ get: [problem(500, 'down')], put: [{ status: 200 }] });
    const started = Date.now();
    const run = await runCli(['exec', '--', 'rev'], { env: { ...env(api.url), FANOUT_EXEC_RETRY_SECONDS: '1' } });
    expect(run.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(run.stderr.trim().split('\n').at(-1)).toMatch(/^fanout exec: could not read the input of item 14 of batch b1: GET \/v1\/batches\/b1\/items\/14\/input failed after \d+ tries: HTTP 500: down$/);
    expect(api.seen.every((r) => r.method === 'GET')).toBe(true);
  });
});
