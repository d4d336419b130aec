import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startTestService, type TestService } from '../helpers/service.js';
import { runCli } from './run-cli.js';

/**
 * Every `fanout get` in every `-o` format, as real child processes against the real service,
 * with deliberately long data: a 253-character name, long labels, a 63-character task name,
 * long custom ids and errors, a long webhook URL and description, CJK text, 1,200 items (two
 * pages). json and yaml must give back the API's own objects; every line of `table` must fit
 * 80 columns; `wide` must have its extra columns; a bad `-o` exits 2 with one line.
 */

const LONG_TASK = 'a-task-with-a-very-long-name-that-goes-on-and-on-and-on-1234567'; // 63, the maximum
const LONG_NAME = `nightly-import-of-the-entire-product-catalogue-${'x'.repeat(150)}-${'名前'.repeat(25)}`;
const LABELS = {
  'team.example.com/owner': 'data-platform-team-with-a-very-long-name-that-fills-63-chars-xx',
  jobgroup: 'jobexample',
  tier: 'batch',
  'fanout.example.com/cost-centre': 'cc-1234567890',
};

let svc: TestService;
let env: Record<string, string>;
let closedPort: number;
const ids = {} as Record<'long' | 'failed' | 'big' | 'hooked' | 'schedule' | 'webhook', string>;

beforeAll(async () => {
  closedPort = await freePort();
  svc = await startTestService({
    redisUrl: inject('redisUrl'),
    tasks: ['echo=cat', 'boom=sh -c "echo \\"a first line of stderr\\" >&2; echo \\"Error: item $(cat) failed because the upstream answered 503 Service Unavailable after 3 retries\\" >&2; exit 3"', `${LONG_TASK}=cat`],
    env: { FANOUT_WEBHOOK_ALLOW: '127.0.0.1' },
  });
  env = { FANOUT_SERVER: svc.url, FANOUT_API_KEY: svc.apiKey };
  const hookUrl = `http://127.0.0.1:${closedPort}/hooks/fanout/${'very-long-path-segment/'.repeat(6)}receiver`;

  const webhook = await svc.client.json('POST', '/v1/webhook-endpoints', {
    url: hookUrl,
    events: ['batch.succeeded', 'batch.failed', 'batch.cancelled', 'item.failed'],
    description: `the data team's receiver ${'with a long description '.repeat(5)}`,
  });
  expect(webhook.status, JSON.stringify(webhook.body)).toBe(201);
  ids.webhook = webhook.body.id;

  ids.long = (await svc.client.createBatch({ name: LONG_NAME, labels: LABELS, task: LONG_TASK, items: ['a', 'b'], parallelism: 999_999 })).id;
  ids.failed = (
    await svc.client.createBatch({
      name: '失敗するバッチの名前はとても長いです-failing',
      labels: LABELS,
      task: 'boom',
      items: [{ customId: `customer-${'0123456789'.repeat(8)}`, n: 1 }, { customId: 'short', n: 2 }, 'plain'],
      retry: { backoffLimitPerItem: 0, backoffSeconds: 0 },
    })
  ).id;
  ids.big = (await svc.client.createBatch({ name: 'big', task: 'echo', items: Array.from({ length: 1200 }, (_, i) => `item-${i}`) })).id;
  ids.hooked = (await svc.client.createBatch({ name: 'hooked', task: 'echo', items: ['x'], webhook: { url: `${hookUrl}?batch=own` } })).id;
  for (const id of [ids.long, ids.failed, ids.big, ids.hooked]) await svc.client.waitForPhase(id, undefined, 150_000);

  const schedule = await svc.client.json('POST', '/v1/schedules', {
    name: `every-day-at-dawn-${'and-again-'.repeat(10)}`,
    labels: LABELS,
    schedule: '0 5 * * 1-5',
    timeZone: 'America/Argentina/Buenos_Aires',
    batchTemplate: { task: 'echo', items: ['a'] },
  });
  expect(schedule.status, JSON.stringify(schedule.body)).toBe(201);
  ids.schedule = schedule.body.id;

  // Deliveries are written when the batches end; wait until both owners have some.
  const deadline = Date.now() + 30_000;
  for (const path of [`/v1/batches/${ids.hooked}/webhook-deliveries`, `/v1/webhook-endpoints/${ids.webhook}/webhook-deliveries`]) {
    while ((await svc.client.json('GET', path)).body.items.length === 0) {
      if (Date.now() > deadline) throw new Error(`no deliveries at ${path}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}, 240_000);

afterAll(async () => {
  await svc?.close();
});

/** Every object of a list, following nextCursor. */
async function apiList(path: string): Promise<unknown[]> {
  const all: unknown[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page: { status: number; body: { items: unknown[]; nextCursor?: string | null } } = await svc.client.json('GET', cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    expect(page.status).toBe(200);
    all.push(...page.body.items);
    cursor = page.body.nextCursor ?? null;
  } while (cursor);
  return all;
}

interface Case {
  name: string;
  args: () => string[];
  /** the API's answer the json/yaml output must equal */
  api: () => Promise<unknown>;
  /** deliveries change while retried: compare only what is stable */
  stable?: (objects: unknown) => unknown;
  headers: string[];
  wide: string[];
  /** what -o name prints */
  names: (api: unknown) => string[];
}

const idsOf = (list: unknown) => (list as Array<{ id: string }>).map((o) => o.id);
const deliveryKeys = (list: unknown) => (list as Array<{ id: string; type: string; batchId: string }>).map(({ id, type, batchId }) => ({ id, type, batchId }));

const BATCH_HEADERS = ['NAME', 'ID', 'PHASE', 'SUCCEEDED', 'FAILED', 'AGE'];
const BATCH_WIDE = ['RUNNING', 'PENDING', 'RUNTIME', 'TASK/IMAGE', 'PARALLELISM', 'DURATION', 'CREATED', 'LABELS'];
const ITEM_HEADERS = ['INDEX', 'CUSTOM ID', 'STATUS', 'ATTEMPTS', 'DURATION', 'ERROR'];
const ITEM_WIDE = ['REASON', 'EXIT CODE', 'WORKER', 'STARTED', 'FINISHED'];
const SCHEDULE_HEADERS = ['NAME', 'ID', 'SCHEDULE', 'SUSPEND', 'ACTIVE', 'LAST SCHEDULE'];
const SCHEDULE_WIDE = ['TIMEZONE', 'NEXT SCHEDULE', 'CONCURRENCY', 'AGE', 'CREATED', 'LABELS'];
const WEBHOOK_HEADERS = ['ID', 'URL', 'ENABLED', 'AGE'];
const WEBHOOK_WIDE = ['EVENTS', 'DESCRIPTION', 'DISABLED REASON', 'CREATED', 'UPDATED'];
const DELIVERY_HEADERS = ['ID', 'EVENT', 'STATUS', 'ATTEMPTS', 'AGE'];
const DELIVERY_WIDE = ['BATCH', 'ENDPOINT', 'LAST CODE', 'NEXT ATTEMPT', 'CREATED', 'URL', 'LAST ERROR'];

const CASES: Case[] = [
  { name: 'batches', args: () => ['get', 'batches'], api: () => apiList('/v1/batches?limit=500'), headers: BATCH_HEADERS, wide: BATCH_WIDE, names: idsOf },
  { name: 'batches -l', args: () => ['get', 'batches', '-l', 'jobgroup=jobexample'], api: () => apiList('/v1/batches?labelSelector=jobgroup%3Djobexample'), headers: BATCH_HEADERS, wide: BATCH_WIDE, names: idsOf },
  { name: 'batch ID', args: () => ['get', 'batch', ids.long], api: async () => (await svc.client.json('GET', `/v1/batches/${ids.long}`)).body, headers: BATCH_HEADERS, wide: BATCH_WIDE, names: (b) => [(b as { id: string }).id] },
  { name: 'items BATCH', args: () => ['get', 'items', ids.failed], api: () => apiList(`/v1/batches/${ids.failed}/items`), headers: ITEM_HEADERS, wide: ITEM_WIDE, names: (l) => (l as Array<{ index: number }>).map((i) => String(i.index)) },
  { name: 'items BATCH (two pages)', args: () => ['get', 'items', ids.big], api: () => apiList(`/v1/batches/${ids.big}/items?limit=1000`), headers: ITEM_HEADERS, wide: ITEM_WIDE, names: (l) => (l as Array<{ index: number }>).map((i) => String(i.index)) },
  { name: 'items --status', args: () => ['get', 'items', ids.failed, '--status', 'failed'], api: () => apiList(`/v1/batches/${ids.failed}/items?status=failed`), headers: ITEM_HEADERS, wide: ITEM_WIDE, names: (l) => (l as Array<{ index: number }>).map((i) => String(i.index)) },
  { name: 'item BATCH INDEX', args: () => ['get', 'item', ids.failed, '0'], api: async () => (await svc.client.json('GET', `/v1/batches/${ids.failed}/items/0`)).body, headers: ITEM_HEADERS, wide: ITEM_WIDE, names: () => ['0'] },
  { name: 'schedules', args: () => ['get', 'schedules'], api: () => apiList('/v1/schedules'), headers: SCHEDULE_HEADERS, wide: SCHEDULE_WIDE, names: idsOf },
  { name: 'schedule ID', args: () => ['get', 'schedule', ids.schedule], api: async () => (await svc.client.json('GET', `/v1/schedules/${ids.schedule}`)).body, headers: SCHEDULE_HEADERS, wide: SCHEDULE_WIDE, names: (s) => [(s as { id: string }).id] },
  { name: 'webhooks', args: () => ['get', 'webhooks'], api: () => apiList('/v1/webhook-endpoints'), headers: WEBHOOK_HEADERS, wide: WEBHOOK_WIDE, names: idsOf },
  { name: 'webhook ID', args: () => ['get', 'webhook', ids.webhook], api: async () => (await svc.client.json('GET', `/v1/webhook-endpoints/${ids.webhook}`)).body, headers: WEBHOOK_HEADERS, wide: WEBHOOK_WIDE, names: (w) => [(w as { id: string }).id] },
  { name: 'deliveries BATCH', args: () => ['get', 'deliveries', ids.hooked], api: () => apiList(`/v1/batches/${ids.hooked}/webhook-deliveries?limit=500`), stable: deliveryKeys, headers: DELIVERY_HEADERS, wide: DELIVERY_WIDE, names: idsOf },
  { name: 'deliveries WEBHOOK', args: () => ['get', 'deliveries', ids.webhook], api: () => apiList(`/v1/webhook-endpoints/${ids.webhook}/webhook-deliveries?limit=500`), stable: deliveryKeys, headers: DELIVERY_HEADERS, wide: DELIVERY_WIDE, names: idsOf },
];

/** The header cells of a table: separated by three spaces or more (a header may hold one space). */
const headerCells = (line: string) => line.trim().split(/ {3,}/);

describe.each(CASES)('fanout get $name', (c) => {
  it('-o json and -o yaml give back the API objects (an array for a list)', async () => {
    const [json, yaml] = await Promise.all([runCli([...c.args(), '-o', 'json'], { env }), runCli([...c.args(), '--output', 'yaml'], { env })]);
    expect(json.code, json.stderr).toBe(0);
    expect(yaml.code, yaml.stderr).toBe(0);
    const expected = await c.api();
    const fromJson = JSON.parse(json.stdout);
    const fromYaml = parseYaml(yaml.stdout);
    // a list is written object by object: the text is still exactly that of the whole document
    expect(json.stdout).toBe(`${JSON.stringify(fromJson, null, 2)}\n`);
    expect(yaml.stdout).toBe(stringifyYaml(fromYaml));
    const view = c.stable ?? ((x: unknown) => x);
    expect(view(fromJson)).toEqual(view(expected));
    expect(view(fromYaml)).toEqual(view(expected));
    expect(Array.isArray(fromJson)).toBe(Array.isArray(expected));
    if (Array.isArray(expected)) expect(expected.length).toBeGreaterThan(0);
  });

  it('-o table (the list default) fits 80 columns under kubectl headers', async () => {
    const run = await runCli([...c.args(), '-o', 'table'], { env });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(headerCells(lines[0]!)).toEqual(c.headers);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect([...line].length, line).toBeLessThanOrEqual(80);
    for (const line of lines) expect(line).not.toMatch(/\s$/);
    expect(run.stdout).not.toMatch(/\d{4}-\d\d-\d\dT/); // ages, not timestamps
  });

  it('-o wide adds its columns and cuts nothing', async () => {
    const run = await runCli([...c.args(), '-o', 'wide'], { env });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(headerCells(lines[0]!)).toEqual([...c.headers, ...c.wide]);
    expect(run.stdout).not.toContain('…');
  });

  it('-o name prints the ids', async () => {
    const run = await runCli([...c.args(), '-o', 'name'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trimEnd().split('\n')).toEqual(c.names(await c.api()));
  });

  it('a bad -o value exits 2 with one line naming the choices', async () => {
    const run = await runCli([...c.args(), '-o', 'xml'], { env });
    expect(run).toEqual({ code: 2, stdout: '', stderr: 'error: -o/--output: expected one of table|wide|json|yaml|name (got "xml")\n' });
  });
});

describe('fanout get, the long data', () => {
  it('cuts long cells with … in table and shows them whole in wide', async () => {
    const table = await runCli(['get', 'batches'], { env });
    const wide = await runCli(['get', 'batches', '-o', 'wide'], { env });
    expect(table.stdout).toMatch(/^nightly-import.*…\s+b[0-9a-z]{19}\s+Succeeded\s+2\/2\s+0\s+(?:\d+[dhms])+$/m);
    expect(wide.stdout).toContain(LONG_NAME);
    expect(wide.stdout).toContain(LONG_TASK);
    expect(wide.stdout).toContain('999999');
    expect(wide.stdout).toContain('team.example.com/owner=data-platform-team');
    expect(wide.stdout.split('\n').some((l) => l.length > 80)).toBe(true);
    // ids are never cut in table: every batch id is there whole
    for (const id of [ids.long, ids.failed, ids.big, ids.hooked]) expect(table.stdout).toContain(id);
  });

  it('items: the last line of the error, the attempts, the exit code in wide', async () => {
    const run = await runCli(['get', 'items', ids.failed], { env });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[1]).toMatch(/^0\s+customer-01234.*…\s+failed\s+1\s+(?:\d+[dhms])+\s+Error: item .*…$/);
    expect(lines[2]).toMatch(/^1\s+short\s+failed\s+1\s+/);
    expect(lines[3]).toMatch(/^2\s+-\s+failed\s+/);
    const wide = await runCli(['get', 'items', ids.failed, '-o', 'wide'], { env });
    expect(wide.stdout).toContain('after 3 retries');
    expect(wide.stdout.split('\n')[1]).toMatch(/\s3\s/);
  });

  it('a table of 1,200 items has every item, one line each', async () => {
    const run = await runCli(['get', 'items', ids.big], { env });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1201);
    expect(lines[1200]).toMatch(/^1199\s+-\s+succeeded\s+1\s/);
  });

  it('COLUMNS wider than 80 gives tables the room', async () => {
    const run = await runCli(['get', 'batches'], { env: { ...env, COLUMNS: '200' } });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines.some((l) => l.length > 80)).toBe(true);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(200);
    const narrow = await runCli(['get', 'batches'], { env: { ...env, COLUMNS: '40' } });
    for (const line of narrow.stdout.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(80);
  });

  it('one object by id defaults to YAML; a list to a table', async () => {
    const one = await runCli(['get', 'webhook', ids.webhook], { env });
    expect(parseYaml(one.stdout)).toMatchObject({ id: ids.webhook, enabled: true });
    const list = await runCli(['get', 'webhooks'], { env });
    expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+URL\s+ENABLED\s+AGE$/);
  });

  it('says so on stderr when a list is empty, and prints [] as json', async () => {
    const table = await runCli(['get', 'batches', '-l', 'nothing=here'], { env });
    expect(table).toEqual({ code: 0, stdout: '', stderr: 'No batches found.\n' });
    const json = await runCli(['get', 'batches', '-l', 'nothing=here', '-o', 'json'], { env });
    expect(json).toEqual({ code: 0, stdout: '[]\n', stderr: '' });
  });

  it.each([
    [['get', 'things'], 'error: unknown resource "things": use one of batches, items, schedules,\n  webhooks, deliveries\n'],
    [['get', 'items'], 'error: items belong to a batch: fanout get items BATCH_ID [INDEX]\n'],
    [['get', 'item', 'b1', 'first'], 'error: an item index is a whole number 0 or more, not "first"\n'],
    [['get', 'schedules', '--phase', 'Running'], 'error: --phase does not apply to schedules\n'],
    [['get', 'batch', 'b1', '-l', 'a=b'], 'error: filters apply to a list: drop the ID or the filters\n'],
    [['get', 'items', 'b1', '--status', 'sad'], 'error: --status: expected one of pending|running|succeeded|failed|cancelled\n'],
  ])('usage errors exit 2: %j', async (args, stderr) => {
    const run = await runCli(args, { env });
    expect(run).toEqual({ code: 2, stdout: '', stderr });
  });

  it('an unknown id is the API problem, exit 1', async () => {
    const run = await runCli(['get', 'webhook', 'whe_nope'], { env });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^error: Not Found/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
