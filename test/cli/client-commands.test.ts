import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { fakeApi, type FakeApi } from './fake-api.js';
import { runCli } from './run-cli.js';

// The CLI's client commands, run as real child processes against fakeApi (a named fake of the
// API's shapes, see fake-api.ts): output formats, exit codes and error printing.

const API_KEY = 'test-key-123';
let api: FakeApi;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fanout-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  api = await fakeApi({ apiKey: API_KEY });
  env = { FANOUT_SERVER: api.url, FANOUT_API_KEY: API_KEY };
});
afterEach(async () => {
  await api.close();
});

const spec = { name: 'fruit', labels: { jobgroup: 'jobexample' }, runtime: 'queue', task: 'rev', items: ['foo', 'bar', 'baz'], parallelism: 2 };

async function specFile(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

describe('fanout submit', () => {
  it('posts a JSON spec with the API key and prints only the batch id', async () => {
    const run = await runCli(['submit', '-f', await specFile('batch.json', JSON.stringify(spec))], { env });
    expect(run).toMatchObject({ code: 0, stdout: 'b-0001\n', stderr: '' });
    const post = api.requests.find((r) => r.method === 'POST')!;
    expect(post.url).toBe('/v1/batches');
    expect(post.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(post.headers['content-type']).toBe('application/json');
    expect(JSON.parse(post.body)).toEqual(spec);
  });

  it('reads YAML by extension', async () => {
    const yaml = 'name: fruit\ntask: rev\nruntime: queue\nitems:\n  - foo\n  - {name: apple, url: "http://dbpedia.org/resource/Apple"}\n';
    const run = await runCli(['submit', '-f', await specFile('batch.yaml', yaml)], { env });
    expect(run.code).toBe(0);
    expect(JSON.parse(api.requests[0]!.body).items).toEqual(['foo', { name: 'apple', url: 'http://dbpedia.org/resource/Apple' }]);
  });

  it('reads JSON from stdin with -f -', async () => {
    const run = await runCli(['submit', '-f', '-'], { env, input: JSON.stringify(spec) });
    expect(run).toMatchObject({ code: 0, stdout: 'b-0001\n' });
    expect(api.batches.get('b-0001')!.items).toEqual(spec.items);
  });

  it('streams an .ndjson file as application/x-ndjson', async () => {
    const lines = [JSON.stringify({ name: 'big', task: 'rev', runtime: 'queue' }), ...Array.from({ length: 50 }, (_, i) => JSON.stringify(`item-${i}`))];
    const run = await runCli(['submit', '-f', await specFile('batch.ndjson', `${lines.join('\n')}\n`)], { env });
    expect(run).toMatchObject({ code: 0, stdout: 'b-0001\n' });
    const post = api.requests[0]!;
    expect(post.headers['content-type']).toBe('application/x-ndjson');
    expect(post.headers['content-length']).toBeUndefined(); // streamed, not buffered
    expect(api.batches.get('b-0001')!.status.counts.total).toBe(50);
  });

  it('--wait exits 0 when the batch Succeeded, printing phase changes on a non-TTY', async () => {
    const run = await runCli(['submit', '-f', await specFile('ok.json', JSON.stringify(spec)), '--wait'], { env });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('b-0001\n');
    expect(run.stderr).toContain('batch b-0001 Pending: 0/3 done');
    expect(run.stderr).toContain('batch b-0001 Running: 1/3 done');
    expect(run.stderr).toContain('batch b-0001 Succeeded: 3/3 done, 3 succeeded');
    expect(api.requests.filter((r) => r.method === 'GET' && r.url === '/v1/batches/b-0001')).toHaveLength(2);
  });

  it('--wait exits 1 when the batch Failed and says why', async () => {
    const failing = { ...spec, items: ['foo', 'fail', 'bar'] };
    const run = await runCli(['submit', '-f', await specFile('bad.json', JSON.stringify(failing)), '--wait'], { env });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('b-0001\n');
    expect(run.stderr).toContain('batch b-0001 Failed: 3/3 done, 2 succeeded, 1 failed');
    expect(run.stderr).toContain('MaxFailedItemsExceeded: 1 items failed');
  });

  it('prints a validation problem with one line per pointer and exits 1', async () => {
    const run = await runCli(['submit', '-f', await specFile('invalid.json', JSON.stringify({ name: 'x', items: ['a', null] }))], { env });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      'error: Invalid batch spec: 2 problems in the request body',
      '  /task: required: the name of a task workers registered',
      '  /items/1: must not be null',
    ]);
  });

  it('fails with one message (wrapped to 80 columns) on an unreadable or malformed spec file', async () => {
    const missing = await runCli(['submit', '-f', join(dir, 'nope.json')], { env });
    expect(missing.code).toBe(1);
    expect(unwrap(missing.stderr)).toBe(`error: cannot read ${join(dir, 'nope.json')}: no such file\n`);
    const broken = await runCli(['submit', '-f', await specFile('broken.yaml', 'items: [a, b\n')], { env });
    expect(broken.code).toBe(1);
    expect(unwrap(broken.stderr)).toMatch(/^error: .*broken\.yaml: invalid YAML \(line \d+, column \d+\): .+\n$/);
    for (const line of broken.stderr.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(api.requests).toHaveLength(0);
  });
});

describe('errors', () => {
  it('names the server URL when the connection is refused, wrapped to 80 columns', async () => {
    const port = await closedPort();
    const run = await runCli(['get', 'batches'], { env: { ...env, FANOUT_SERVER: `http://127.0.0.1:${port}` } });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `error: cannot reach the Fanout API at http://127.0.0.1:${port}: connection refused\n  (is the server running? set --server or FANOUT_SERVER)\n`,
    );
    // COLUMNS wider than 80 gives the room back
    const wide = await runCli(['get', 'batches'], { env: { ...env, FANOUT_SERVER: `http://127.0.0.1:${port}`, COLUMNS: '200' } });
    expect(wide.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('--server and --api-key flags override the environment', async () => {
    const run = await runCli(['get', 'batches', '--server', api.url, '--api-key', 'wrong'], { env: { FANOUT_SERVER: 'http://127.0.0.1:1' } });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('error: Unauthorized: missing or unknown API key\n  (send an API key with --api-key or FANOUT_API_KEY)\n');
    expect(api.requests[0]!.headers.authorization).toBe('Bearer wrong');
  });

  it('a 404 problem for an unknown batch', async () => {
    const run = await runCli(['get', 'batch', 'b-9999'], { env });
    expect(run).toMatchObject({ code: 1, stdout: '', stderr: 'error: Not Found: batch b-9999 does not exist\n' });
  });

  it('rejects bad flags with one line and exit 2 before starting anything', async () => {
    const port = await runCli(['up', '--port', 'eighty'], { env });
    expect(port).toMatchObject({ code: 2, stderr: 'error: --port: expected a port number 0-65535 (got "eighty")\n' });
    const task = await runCli(['worker', '--task', 'rev'], { env });
    expect(task.code).toBe(2);
    expect(task.stderr).toBe('error: --task: expected NAME=COMMAND|URL, e.g. --task rev=rev (got "rev")\n');
    const unknown = await runCli(['get', 'batches', '--colour'], { env });
    expect(unknown).toMatchObject({ code: 2, stderr: "error: unknown option '--colour'\n(run with --help for usage)\n" });
  });
});

describe('fanout get', () => {
  it('lists every page as a table within 80 columns', async () => {
    const hour = 3600_000;
    api.seed({ name: 'fruit', labels: { jobgroup: 'jobexample' }, items: ['a', 'b', 'c'], createdAt: new Date(Date.now() - 2 * hour).toISOString() });
    api.seed({
      name: 'a-very-long-batch-name-that-would-not-fit-in-a-terminal-line',
      labels: { jobgroup: 'jobexample', team: 'data-platform', 'fanout.dev/owner': 'someone-with-a-long-name' },
      items: ['x'],
      createdAt: new Date(Date.now() - 90_000).toISOString(),
    });
    api.seed({ labels: {}, items: ['y', 'z'], createdAt: new Date(Date.now() - 3 * 86_400_000).toISOString() });
    const done = api.seed({ name: 'done', items: ['1', '2'] });
    Object.assign(api.batches.get(done.id)!.status, { phase: 'Succeeded', counts: { total: 2, pending: 0, running: 0, succeeded: 1, failed: 1, cancelled: 0 } });
    api.seed({ name: 'fifth', items: ['q'] });

    const run = await runCli(['get', 'batches'], { env });
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(6);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
    expect(lines[0]).toMatch(/^NAME\s+ID\s+PHASE\s+SUCCEEDED\s+FAILED\s+AGE$/);
    expect(lines[1]).toMatch(/^fruit\s+b-0001\s+Pending\s+0\/3\s+0\s+120m$/);
    expect(lines[2]).toMatch(/^a-very-long.*…\s+b-0002\s+Pending\s+0\/1\s+0\s+9\ds$/);
    expect(lines[3]).toMatch(/^-\s+b-0003\s+Pending\s+0\/2\s+0\s+3d$/);
    expect(lines[4]).toMatch(/^done\s+b-0004\s+Succeeded\s+1\/2\s+1\s+\d+s$/);
    expect(lines[5]).toContain('b-0005');
    // five batches, two per page: three list calls following nextCursor
    expect(api.requests.map((r) => r.url)).toEqual(['/v1/batches', '/v1/batches?cursor=2', '/v1/batches?cursor=4']);

    const wide = await runCli(['get', 'batches', '-o', 'wide'], { env });
    expect(wide.stdout).toContain('a-very-long-batch-name-that-would-not-fit-in-a-terminal-line');
    expect(wide.stdout).toContain('fanout.dev/owner=someone-with-a-long-name,jobgroup=jobexample,team=data-platform');
  });

  it('passes -l and --phase to the API', async () => {
    api.seed({ name: 'one', labels: { jobgroup: 'jobexample' } });
    api.seed({ name: 'two', labels: { jobgroup: 'other' } });
    const run = await runCli(['get', 'batches', '-l', 'jobgroup=jobexample', '--phase', 'Pending', '-o', 'name'], { env });
    expect(run).toMatchObject({ code: 0, stdout: 'b-0001\n' });
    expect(api.requests[0]!.url).toBe('/v1/batches?labelSelector=jobgroup%3Djobexample&phase=Pending');
  });

  it('says so on stderr when nothing matches', async () => {
    const run = await runCli(['get', 'batches'], { env });
    expect(run).toMatchObject({ code: 0, stdout: '', stderr: 'No batches found.\n' });
  });

  it('shows one batch as YAML', async () => {
    const seeded = api.seed({ name: 'fruit', labels: { jobgroup: 'jobexample' }, items: ['a', 'b'] });
    const run = await runCli(['get', 'batch', seeded.id], { env });
    expect(run.code).toBe(0);
    const shown = parseYaml(run.stdout);
    expect(shown).toMatchObject({ id: seeded.id, name: 'fruit', labels: { jobgroup: 'jobexample' } });
    expect(shown.status.counts.total).toBe(2);
  });
});

describe('fanout results, cancel, delete', () => {
  it('streams results NDJSON unchanged', async () => {
    const seeded = api.seed({ items: ['a', 'fail', { n: 3 }] });
    const run = await runCli(['results', seeded.id], { env });
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('');
    expect(JSON.parse(lines[1]!)).toEqual({ index: 1, customId: null, status: 'Failed', result: null, error: 'exit code 1', attempts: 1 });
  });

  it('cancels a batch', async () => {
    const seeded = api.seed({ items: ['a'] });
    const run = await runCli(['cancel', seeded.id], { env });
    expect(run).toMatchObject({ code: 0, stdout: `batch ${seeded.id} cancelled\n` });
    expect(api.requests[0]).toMatchObject({ method: 'POST', url: `/v1/batches/${seeded.id}/cancel` });
  });

  it('deletes one batch by id', async () => {
    const seeded = api.seed({ items: ['a'] });
    const run = await runCli(['delete', seeded.id], { env });
    expect(run).toMatchObject({ code: 0, stdout: `batch ${seeded.id} deleted\n` });
    expect(api.batches.size).toBe(0);
  });

  it('deletes by label selector and reports the count', async () => {
    for (let i = 0; i < 3; i++) api.seed({ labels: { jobgroup: 'jobexample' } });
    api.seed({ labels: { jobgroup: 'keep' } });
    const run = await runCli(['delete', '-l', 'jobgroup=jobexample'], { env });
    expect(run).toMatchObject({ code: 0, stdout: 'deleted 3 batches\n', stderr: '' });
    expect(api.requests[0]).toMatchObject({ method: 'DELETE', url: '/v1/batches?labelSelector=jobgroup%3Djobexample' });
    expect([...api.batches.values()].map((b) => b.labels)).toEqual([{ jobgroup: 'keep' }]);
  });

  it('refuses a delete with neither ids nor a selector', async () => {
    const run = await runCli(['delete'], { env });
    expect(run).toMatchObject({ code: 1, stderr: 'error: give a batch ID or -l SELECTOR\n' });
    expect(api.requests).toHaveLength(0);
  });
});

/** An error message as one line again: wrapped lines continue with a two-space indent. */
function unwrap(text: string): string {
  return text.replace(/\n {2}(?=\S)/g, ' ');
}

/** A port nothing listens on: bound once to learn a free number, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
