import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SseParser, type ServerSentMessage } from '../../sdk/src/index.js';
import { ApiClient } from '../helpers/api-client.js';
import { expectAllSucceededOnce, newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import type { FanoutProcess } from '../helpers/processes.js';
import { startReceiver, type Received, type Receiver } from '../webhooks/receiver.js';

/**
 * The highly available layout as real processes on one PostgreSQL database and one Redis:
 * three `fanout api` replicas, two `fanout dispatcher` (one leads, one stands by) and two
 * `fanout worker`. The API replicas share nothing but the database: a batch can be created on
 * one, followed on another and cancelled on a third. SIGKILL of the leading dispatcher mid-batch:
 * the standby takes over once the lease has run out (the default 15 s here, so the takeover time
 * measured is the one operators get), and nothing is lost or done twice: items, schedule ticks
 * and webhook events. The takeover time is logged, never asserted.
 */

const DATABASE = 'fanout_ha';
const WORK = 'work=sleep 0.03; cat';
const HOLD = 'hold=sleep 30';
const FINAL = ['Succeeded', 'Failed', 'Cancelled'];

interface ApiReplica {
  proc: FanoutProcess & { url: string };
  client: ApiClient;
}

interface Delivery {
  received: Received;
  status: number;
  event: { type: string; data: { batchId?: string } };
}

/** The JSON log lines of a process (pino), skipping anything else it printed. */
function logLines(p: FanoutProcess): any[] {
  return p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

const leadingLines = (p: FanoutProcess) => logLines(p).filter((l) => l.msg === 'leading');

/** Reads a batch's event stream from `client`'s replica until the server ends it. */
async function followEvents(client: ApiClient, batchId: string, timeoutMs = 60_000): Promise<Array<Extract<ServerSentMessage, { event: string }>>> {
  const res = await client.request('GET', `/v1/batches/${batchId}/events`, undefined, {}).catch((err) => {
    throw new Error(`events of ${batchId}: ${(err as Error).message}`);
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const parser = new SseParser();
  const events: Array<Extract<ServerSentMessage, { event: string }>> = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = setTimeout(() => void reader.cancel(), timeoutMs);
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      for (const m of parser.push(chunk.value)) if ('event' in m) events.push(m);
    }
  } finally {
    clearTimeout(deadline);
  }
  return events;
}

describe('e2e: 3 API replicas, 2 dispatchers, 2 workers on one PostgreSQL', () => {
  let postgres: TestPostgres;
  let c: Cluster;
  let apis: ApiReplica[] = [];
  let dispatchers: FanoutProcess[] = [];
  let receiver: Receiver;
  /** the receiver answers 503 while true: deliveries stay pending, to be retried */
  let refusing = false;
  const deliveries: Delivery[] = [];

  beforeAll(async () => {
    postgres = await startTestPostgres();
    const databaseUrl = await postgres.createDatabase(DATABASE);
    receiver = await startReceiver(0, (r) => {
      const status = refusing ? 503 : 200;
      deliveries.push({ received: r, status, event: JSON.parse(r.body) });
      return status;
    });
    c = newCluster(inject('redisUrl'));
    Object.assign(c.env, {
      DATABASE_URL: databaseUrl,
      FANOUT_WEBHOOK_ALLOW: '127.0.0.1',
      // enough retries to outlast a takeover: an event refused before it is delivered after it
      FANOUT_WEBHOOK_RETRY_SCHEDULE: Array.from({ length: 40 }, () => '1s').join(','),
      FANOUT_WEBHOOK_TIMEOUT_SECONDS: '2',
    });
    // The first API migrates the new database; the others find it migrated.
    const first = await c.api();
    const rest = await Promise.all([c.api(), c.api()]);
    apis = [first, ...rest].map((proc) => ({ proc, client: new ApiClient(proc.url, c.apiKey) }));
    // The default lease, as in production: the takeover measured below is the real one.
    const leaseDefault = { FANOUT_LEADER_LEASE_SECONDS: '15' };
    dispatchers = [await c.dispatcher(leaseDefault)];
    dispatchers.push(await c.dispatcher(leaseDefault));
    await Promise.all([c.worker([WORK, HOLD], { WORKER_NAME: 'w1' }), c.worker([WORK, HOLD], { WORKER_NAME: 'w2' })]);
    const ep = await apis[0].client.json('POST', '/v1/webhook-endpoints', { url: receiver.url });
    expect(ep.status, JSON.stringify(ep.body)).toBe(201);
  }, 240_000);

  afterAll(async () => {
    await c?.stopAll();
    await receiver?.close();
    await postgres?.stop();
  });

  it('API replicas are stateless: create on one, follow on another, cancel on a third; Idempotency-Key holds across them', async () => {
    const [one, two, three] = apis.map((a) => a.client);
    const items = Array.from({ length: 40 }, (_, i) => `sse-${i}`);
    const followed = await one.createBatch({ task: 'work', items, parallelism: 4 });
    const events = await followEvents(two, followed.id);
    const done = events.at(-1)!;
    expect(done.event).toBe('done');
    expect(JSON.parse(done.data)).toMatchObject({ phase: 'Succeeded', counts: { total: 40, succeeded: 40 }, completedIndexes: '0-39' });
    expect(events.filter((e) => e.event === 'progress').length).toBeGreaterThan(0);
    await expectAllSucceededOnce(two, followed.id, items);

    // Cancelled on replica 3 while replica 2 follows it: replica 2's stream ends with the cancel.
    const held = await one.createBatch({ task: 'hold', items: ['a', 'b'] });
    await waitUntil('an item running', async () => (await two.getBatch(held.id)).status.counts.running >= 1, 30_000, 100);
    const stream = followEvents(two, held.id);
    const cancel = await three.json('POST', `/v1/batches/${held.id}/cancel`);
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(200);
    const heldEvents = await stream;
    expect(heldEvents.at(-1)!.event).toBe('done');
    expect(JSON.parse(heldEvents.at(-1)!.data).phase).toBe('Cancelled');
    expect((await two.waitForPhase(held.id, ['Cancelled'], 30_000)).status.phase).toBe('Cancelled');

    // 20 identical creates at once with one new key, spread over the replicas: one batch.
    const spec = { task: 'work', items: ['x', 'y'], labels: { ha: 'idempotency' } };
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, k) => apis[k % 3].client.json('POST', '/v1/batches', spec, { 'idempotency-key': 'ha-race-1' })),
    );
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 202));
    const ids = new Set(answers.map((a) => a.body.id));
    expect(ids.size).toBe(1);
    for (const client of [one, two, three]) {
      const listed = await client.json('GET', `/v1/batches?labelSelector=${encodeURIComponent('ha=idempotency')}`);
      expect(listed.body.items.map((b: any) => b.id)).toEqual([...ids]);
    }
  }, 120_000);

  it('SIGKILL of the leading dispatcher mid-batch: the standby takes over; items, schedule ticks and webhooks once each', async () => {
    const client = apis[0].client;
    // Exactly one dispatcher leads, and the lease row names it.
    const leaders = dispatchers.filter((d) => leadingLines(d).length > 0);
    expect(leaders).toHaveLength(1);
    const [leader] = leaders;
    const standby = dispatchers.find((d) => d !== leader)!;
    expect(standby.output()).toContain('"msg":"another dispatcher leads; standing by"');
    const [lease] = await postgres.sql<{ holder: string; token: string }>('SELECT holder, token FROM leader_leases WHERE name = $1', ['dispatcher'], DATABASE);
    expect(lease.holder).toContain(`:${leader.child.pid}:`);
    const leaderToken = leadingLines(leader).at(-1)!.fencingToken;
    expect(Number(lease.token)).toBe(leaderToken);

    // Events refused from now until the kill are retried, by the new leader, with their ids.
    refusing = true;
    const schedule = await client.json('POST', '/v1/schedules', {
      name: 'ha-tick',
      schedule: '* * * * * *',
      successfulHistoryLimit: 200,
      batchTemplate: { task: 'work', items: ['tick'] },
    });
    expect(schedule.status, JSON.stringify(schedule.body)).toBe(201);
    const scheduleBatches = async (): Promise<any[]> =>
      (await client.json('GET', `/v1/batches?limit=500&labelSelector=${encodeURIComponent(`fanout.dev/schedule=${schedule.body.id}`)}`)).body.items;

    // The first ticked batches (run by the leader about to be killed) finish and their events are
    // refused; then the batch to kill in. Waiting for a refused event alone was not enough: an
    // event of the previous test's batches can be the one refused, before any tick.
    await waitUntil('a first tick by the leader', async () => (await scheduleBatches()).length >= 1, 30_000, 50);
    await waitUntil('a refused webhook', () => deliveries.some((d) => d.status === 503), 30_000, 50);
    const items = Array.from({ length: 400 }, (_, i) => `item-${i}`);
    const batch = await client.createBatch({ task: 'work', items, parallelism: 8 });
    await waitUntil('some items done', async () => (await client.getBatch(batch.id)).status.counts.succeeded >= 40, 60_000, 50);
    expect((await client.getBatch(batch.id)).status.phase).toBe('Running');

    // How long the lease still ran at the kill: the standby can take it no sooner.
    const [{ expires_at: leaseEnd }] = await postgres.sql<{ expires_at: string }>('SELECT expires_at FROM leader_leases WHERE name = $1', ['dispatcher'], DATABASE);
    const killedAt = Date.now();
    await leader.kill('SIGKILL');
    refusing = false;
    const frozen = (await client.getBatch(batch.id)).status.counts.succeeded;
    const progressed = waitUntil('the batch progressing again', async () => ((await client.getBatch(batch.id)).status.counts.succeeded > frozen ? Date.now() : null), 60_000, 100);
    progressed.catch(() => {}); // awaited below; a failure before that is reported there

    await standby.waitFor(/"msg":"leading"/, 60_000);
    const takeover = leadingLines(standby).at(-1)!;
    expect(takeover.fencingToken).toBeGreaterThan(leaderToken);
    const progressedAt = await progressed;
    console.log(
      `[ha] lease 15 s: SIGKILL → standby leading ${takeover.time - killedAt} ms (token ${leaderToken} → ${takeover.fencingToken}; the lease still ran ${Number(leaseEnd) - killedAt} ms at the kill); → first item progressing ${progressedAt - killedAt} ms`,
    );

    expect((await client.waitForPhase(batch.id, FINAL, 90_000)).status.phase).toBe('Succeeded');
    await expectAllSucceededOnce(client, batch.id, items);

    // Ticks the new leader ran, then the schedule stops.
    const ticksBefore = (await scheduleBatches()).length;
    await waitUntil('ticks after the takeover', async () => (await scheduleBatches()).length >= ticksBefore + 3, 30_000, 200);
    await client.json('PATCH', `/v1/schedules/${schedule.body.id}`, { suspend: true });
    await sleep(1500);
    const ticked = await scheduleBatches();
    // One batch per tick: the name carries the tick's second, so a tick run twice shows as a repeated name.
    const names = ticked.map((b) => b.name);
    expect(new Set(names).size, `names: ${names.sort().join(' ')}`).toBe(names.length);
    const runs = (await client.json('GET', `/v1/schedules/${schedule.body.id}`)).body.status.recentRuns.filter((r: any) => r.outcome === 'started');
    expect(new Set(runs.map((r: any) => r.time)).size).toBe(runs.length);
    const oldLeaderTicks = logLines(leader).filter((l) => l.msg === 'schedule ticked' && l.batchId).length;
    const newLeaderTicks = logLines(standby).filter((l) => l.msg === 'schedule ticked' && l.batchId).length;
    expect(oldLeaderTicks).toBeGreaterThan(0);
    expect(newLeaderTicks).toBeGreaterThan(0);

    // Every batch's final event reaches the receiver, every attempt of one event with one webhook-id.
    const everyBatch = (await client.json('GET', '/v1/batches?limit=500')).body.items;
    for (const b of everyBatch) await client.waitForPhase(b.id, FINAL, 60_000);
    const finished = (await client.json('GET', '/v1/batches?limit=500')).body.items;
    await waitUntil('every final event delivered', () => finished.every((b: any) => deliveries.some((d) => d.status === 200 && d.event.data.batchId === b.id)), 60_000, 200);
    const idsByEvent = new Map<string, Set<string>>();
    for (const d of deliveries) {
      if (!d.event.type.startsWith('batch.')) continue;
      const key = `${d.event.type} ${d.event.data.batchId}`;
      idsByEvent.set(key, (idsByEvent.get(key) ?? new Set()).add(d.received.headers['webhook-id']));
    }
    for (const b of finished) {
      const type = `batch.${b.status.phase.toLowerCase()}`;
      expect(idsByEvent.get(`${type} ${b.id}`)?.size, `webhook-ids of ${type} ${b.id}`).toBe(1);
    }
    // No two events share an id, and the events refused before the kill were delivered after it with theirs.
    const allIds = [...idsByEvent.values()].map((s) => [...s][0]);
    expect(new Set(allIds).size).toBe(allIds.length);
    const refusedBeforeKill = deliveries.filter((d) => d.status === 503 && d.received.at < killedAt);
    expect(refusedBeforeKill.length).toBeGreaterThan(0);
    for (const r of refusedBeforeKill) {
      const ok = deliveries.find((d) => d.status === 200 && d.received.headers['webhook-id'] === r.received.headers['webhook-id']);
      expect(ok, `delivery of refused ${r.received.headers['webhook-id']}`).toBeDefined();
      expect(ok!.received.at).toBeGreaterThan(killedAt);
    }
    // The delivery log agrees: one delivery, the old leader's refused attempts and the new one's success.
    const first = refusedBeforeKill[0];
    const log = (await client.json('GET', `/v1/batches/${first.event.data.batchId}/webhook-deliveries`)).body.items;
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ webhookId: first.received.headers['webhook-id'], status: 'succeeded' });
    const codes = log[0].attempts.map((a: any) => a.statusCode);
    expect(codes.at(-1)).toBe(200);
    expect(codes.slice(0, -1).every((code: number) => code === 503)).toBe(true);
    expect(Date.parse(log[0].attempts[0].at)).toBeLessThan(killedAt);
  }, 180_000);
});
