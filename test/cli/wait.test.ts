import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { spawnFanout } from '../helpers/processes.js';
import { startTestService, type TestService } from '../helpers/service.js';

/**
 * `fanout wait ID` as a real child process against the real service: exit codes, and that it
 * follows the events stream, or polls GET /v1/batches/{id} when the stream is unavailable. A tiny
 * proxy in front of the service counts the requests (and can refuse /events).
 */

interface Proxy {
  url: string;
  paths: string[];
  close(): Promise<void>;
}

/** `refuse`: /events answers 404; `drop`: /events is cut after its first bytes. */
async function startProxy(target: string, events: 'pass' | 'refuse' | 'drop'): Promise<Proxy> {
  const upstream = new URL(target);
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    if (events === 'refuse' && req.url?.endsWith('/events')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no events here');
      return;
    }
    const out = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      if (events === 'drop' && req.url?.endsWith('/events')) answer.once('data', (chunk: Buffer) => res.write(chunk, () => res.destroy()));
      else answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    res.on('close', () => out.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

async function runWait(server: string, apiKey: string, id: string, whenFollowing?: () => Promise<void>): Promise<{ code: number | null; output: string }> {
  const p = spawnFanout(['wait', id], { FANOUT_SERVER: server, FANOUT_API_KEY: apiKey });
  const exited = new Promise<number | null>((resolve) => p.child.once('exit', (c) => resolve(c)));
  await whenFollowing?.();
  const code = await exited;
  return { code, output: p.output() };
}

/** Items of the `gated` task finish only once the gate file exists, so a batch outlasts the CLI's start. */
const gate = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-wait-')), 'open');
const openGate = () => fs.writeFileSync(gate, '');

async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('fanout wait ID', () => {
  let svc: TestService;
  const proxies: Proxy[] = [];
  beforeAll(async () => {
    svc = await startTestService({
      redisUrl: inject('redisUrl'),
      tasks: [`gated=sh -c "while [ ! -e ${gate} ]; do sleep 0.05; done; cat"`, 'fail=exit 3'],
      env: { FANOUT_EVENTS_POLL_MS: '50' },
    });
  });
  beforeEach(() => fs.rmSync(gate, { force: true }));
  afterAll(async () => {
    for (const p of proxies) await p.close();
    await svc?.close();
  });

  it('follows the events stream and exits 0 when the batch Succeeded', async () => {
    const proxy = await startProxy(svc.url, 'pass');
    proxies.push(proxy);
    const b = await svc.client.createBatch({ task: 'gated', items: ['a', 'b', 'c', 'd', 'e', 'f'], parallelism: 2 });
    const run = await runWait(proxy.url, svc.apiKey, b.id, async () => {
      await until(() => proxy.paths.includes(`/v1/batches/${b.id}/events`));
      openGate();
    });
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/Succeeded/);
    // One GET before following, one for the final state: the progress came from the stream.
    expect(proxy.paths.filter((p) => p === `/v1/batches/${b.id}`).length).toBe(2);
  });

  it('exits non-zero when the batch Failed, and says why', async () => {
    const b = await svc.client.createBatch({ task: 'fail', items: ['x'], retry: { backoffLimitPerItem: 0 } });
    const run = await runWait(svc.url, svc.apiKey, b.id);
    expect(run.code, run.output).toBe(1);
    expect(run.output).toMatch(/Failed/);
  });

  it.each([
    ['is unavailable', 'refuse'],
    ['breaks mid-way', 'drop'],
  ] as const)('falls back to polling when the events stream %s', async (_what, mode) => {
    const proxy = await startProxy(svc.url, mode);
    proxies.push(proxy);
    const b = await svc.client.createBatch({ task: 'gated', items: ['a', 'b', 'c', 'd', 'e', 'f'], parallelism: 2 });
    const run = await runWait(proxy.url, svc.apiKey, b.id, async () => {
      // Open the gate once the CLI polls: the GET before following, then at least one poll.
      await until(() => proxy.paths.includes(`/v1/batches/${b.id}/events`) && proxy.paths.filter((p) => p === `/v1/batches/${b.id}`).length >= 2);
      openGate();
    });
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/Succeeded/);
    expect(proxy.paths.filter((p) => p === `/v1/batches/${b.id}`).length).toBeGreaterThan(2);
  });

  it('exits non-zero for a batch that does not exist', async () => {
    const run = await runWait(svc.url, svc.apiKey, 'bnothere0000');
    expect(run.code).not.toBe(0);
    expect(run.output).toMatch(/not found|404|No such/i);
  });
});
