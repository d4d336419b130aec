import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { startTestService, type TestService } from '../helpers/service.js';
import { waitUntil } from '../helpers/cluster.js';
import { startReceiver, type Receiver } from './receiver.js';
import { run } from '../../src/store/op.js';

/**
 * Webhooks end to end in one real service (SQLite file, Redis, HTTP) with a real receiver on
 * 127.0.0.1 (allowlisted), a short retry schedule, and every signature checked with the
 * standardwebhooks package.
 */

const ENV = { FANOUT_WEBHOOK_ALLOW: '127.0.0.1', FANOUT_WEBHOOK_RETRY_SCHEDULE: '300ms,300ms,300ms,300ms,300ms', FANOUT_WEBHOOK_TIMEOUT_SECONDS: '1' };

function verifyAll(rec: Receiver, secret: string) {
  const wh = new Webhook(secret);
  for (const r of rec.received) expect(wh.verify(r.body, r.headers)).toBeTruthy();
}

describe('webhook delivery', () => {
  let svc: TestService;
  let rec: Receiver;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), env: ENV, tasks: ['rev=rev', 'fail=exit 3'] });
  });
  afterAll(async () => svc?.close());
  afterEach(async () => {
    await rec?.close();
    for (const e of (await svc.client.json('GET', '/v1/webhook-endpoints')).body.items) await svc.client.json('DELETE', `/v1/webhook-endpoints/${e.id}`);
  });

  it('an endpoint gets batch.succeeded, signed, and its secret is shown once', async () => {
    rec = await startReceiver();
    const created = await svc.client.json('POST', '/v1/webhook-endpoints', { url: rec.url, description: 'test' });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_/);
    expect(created.body.events).toEqual(['batch.succeeded', 'batch.failed', 'batch.cancelled']);
    const got = await svc.client.json('GET', `/v1/webhook-endpoints/${created.body.id}`);
    expect(got.body.secret).toBeUndefined();
    expect(JSON.stringify((await svc.client.json('GET', '/v1/webhook-endpoints')).body)).not.toContain('whsec_');

    const batch = await svc.client.createBatch({ task: 'rev', items: ['ab', 'cd'] });
    await svc.client.waitForPhase(batch.id);
    await waitUntil('delivery', () => rec.received.length === 1);
    verifyAll(rec, created.body.secret);
    const event = JSON.parse(rec.received[0].body);
    expect(event).toMatchObject({ type: 'batch.succeeded', data: { batchId: batch.id, phase: 'Succeeded', completedIndexes: '0,1', failedIndexes: '', counts: { total: 2, succeeded: 2 }, links: { batch: `/v1/batches/${batch.id}`, results: `/v1/batches/${batch.id}/results` } } });
    expect(rec.received[0].headers['webhook-id']).toMatch(/^msg_evt_/);

    const log = await waitUntil('logged', async () => {
      const r = await svc.client.json('GET', `/v1/batches/${batch.id}/webhook-deliveries`);
      return r.body.items[0]?.status === 'succeeded' ? r.body.items : null;
    });
    expect(log[0]).toMatchObject({ endpointId: created.body.id, status: 'succeeded', attempts: [{ attempt: 1, statusCode: 200, response: 'ok from receiver' }] });
    expect(log[0].attempts[0].latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('a receiver down for the first attempts gets the event later with the same webhook-id', async () => {
    let calls = 0;
    rec = await startReceiver(0, () => (++calls <= 2 ? 503 : 200));
    const ep = (await svc.client.json('POST', '/v1/webhook-endpoints', { url: rec.url, events: ['batch.finished'] })).body;
    const batch = await svc.client.createBatch({ task: 'rev', items: ['x'] });
    await svc.client.waitForPhase(batch.id);
    await waitUntil('third attempt', () => rec.received.length === 3, 15_000);
    expect(new Set(rec.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
    verifyAll(rec, ep.secret);
    const log = await waitUntil('log', async () => {
      const r = await svc.client.json('GET', `/v1/webhook-endpoints/${ep.id}/webhook-deliveries`);
      return r.body.items[0]?.status === 'succeeded' ? r.body.items[0] : null;
    });
    expect(log.attempts.map((a: any) => a.statusCode)).toEqual([503, 503, 200]);
  });

  it('a closed port is retried until the receiver listens', async () => {
    const probe = await startReceiver();
    const port = probe.port;
    await probe.close();
    const ep = (await svc.client.json('POST', '/v1/webhook-endpoints', { url: `http://127.0.0.1:${port}/hook` })).body;
    const batch = await svc.client.createBatch({ task: 'rev', items: ['x'] });
    await svc.client.waitForPhase(batch.id);
    await waitUntil('a failed attempt', async () => (await svc.client.json('GET', `/v1/batches/${batch.id}/webhook-deliveries`)).body.items[0]?.attempts.length >= 1);
    rec = await startReceiver(port);
    await waitUntil('delivered', () => rec.received.length === 1, 15_000);
    verifyAll(rec, ep.secret);
  });

  it('410 disables the endpoint and says why; redelivery after re-enabling works', async () => {
    let gone = true;
    rec = await startReceiver(0, () => (gone ? 410 : 204));
    const ep = (await svc.client.json('POST', '/v1/webhook-endpoints', { url: rec.url })).body;
    const batch = await svc.client.createBatch({ task: 'rev', items: ['x'] });
    await svc.client.waitForPhase(batch.id);
    const disabled = await waitUntil('disabled', async () => {
      const r = await svc.client.json('GET', `/v1/webhook-endpoints/${ep.id}`);
      return r.body.enabled === false ? r.body : null;
    });
    expect(disabled.disabledReason).toMatch(/410/);
    const [delivery] = (await svc.client.json('GET', `/v1/webhook-endpoints/${ep.id}/webhook-deliveries`)).body.items;
    expect(delivery).toMatchObject({ status: 'failed', attempts: [{ statusCode: 410 }] });
    expect(rec.received).toHaveLength(1);

    // a disabled endpoint gets nothing new, and redelivery is refused until it is enabled
    const second = await svc.client.createBatch({ task: 'rev', items: ['y'] });
    await svc.client.waitForPhase(second.id);
    expect((await svc.client.json('GET', `/v1/batches/${second.id}/webhook-deliveries`)).body.items).toEqual([]);
    expect((await svc.client.json('POST', `/v1/webhook-deliveries/${delivery.id}/redeliver`)).status).toBe(409);

    gone = false;
    expect((await svc.client.json('PATCH', `/v1/webhook-endpoints/${ep.id}`, { enabled: true })).body).toMatchObject({ enabled: true, disabledReason: null });
    const again = await svc.client.json('POST', `/v1/webhook-deliveries/${delivery.id}/redeliver`);
    expect(again.status).toBe(202);
    await waitUntil('redelivered', () => rec.received.length === 2);
    expect(rec.received[1].headers['webhook-id']).toBe(rec.received[0].headers['webhook-id']);
    verifyAll(rec, ep.secret);
    const after = (await svc.client.json('GET', `/v1/webhook-endpoints/${ep.id}/webhook-deliveries`)).body.items[0];
    await waitUntil('log', async () => (await svc.client.json('GET', `/v1/webhook-endpoints/${ep.id}/webhook-deliveries`)).body.items[0].status === 'succeeded');
    expect(after.id).toBe(delivery.id);
  });

  it('rotation: both the new and the old secret verify during the overlap', async () => {
    rec = await startReceiver();
    const ep = (await svc.client.json('POST', '/v1/webhook-endpoints', { url: rec.url })).body;
    const rotated = await svc.client.json('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(ep.secret);
    expect(Date.parse(rotated.body.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(23 * 3600 * 1000);
    const batch = await svc.client.createBatch({ task: 'rev', items: ['x'] });
    await svc.client.waitForPhase(batch.id);
    await waitUntil('delivery', () => rec.received.length === 1);
    expect(rec.received[0].headers['webhook-signature'].split(' ')).toHaveLength(2);
    verifyAll(rec, ep.secret);
    verifyAll(rec, rotated.body.secret);
  });

  it("a batch's own webhook is signed with the tenant's batch-webhook secret; item.failed is opt-in", async () => {
    rec = await startReceiver();
    const batch = await svc.client.createBatch({
      task: 'fail',
      items: [{ customId: 'c0' }, { customId: 'c1' }],
      retry: { backoffLimitPerItem: 0 },
      webhook: { url: rec.url, events: ['batch.failed', 'item.failed'] },
    });
    expect(batch.spec.webhook).toEqual({ url: rec.url, events: ['batch.failed', 'item.failed'] });
    await svc.client.waitForPhase(batch.id);
    await waitUntil('three events', () => rec.received.length === 3);
    const secret = (await svc.client.json('GET', '/v1/batch-webhook-secret')).body.secret;
    verifyAll(rec, secret);
    const events = rec.received.map((r) => JSON.parse(r.body));
    expect(events.map((e) => e.type).sort()).toEqual(['batch.failed', 'item.failed', 'item.failed']);
    const itemEvent = events.find((e) => e.type === 'item.failed' && e.data.index === 1);
    expect(itemEvent.data).toMatchObject({ batchId: batch.id, index: 1, customId: 'c1', reason: 'BackoffLimitExceeded' });
    expect(events.find((e) => e.type === 'batch.failed').data).toMatchObject({ phase: 'Failed', failedIndexes: '0,1' });
    const log = (await svc.client.json('GET', `/v1/batches/${batch.id}/webhook-deliveries`)).body.items;
    expect(log.every((d: any) => d.endpointId === null)).toBe(true);
  });

  it('a target whose address became private is refused at delivery', async () => {
    rec = await startReceiver();
    const ep = (await svc.client.json('POST', '/v1/webhook-endpoints', { url: rec.url })).body;
    // What a DNS change would do: the same endpoint now leads to a private address.
    await svc.service.store.write(run('UPDATE webhook_endpoints SET url = ? WHERE id = ?', 'http://10.255.255.1:9/hook', ep.id));
    const batch = await svc.client.createBatch({ task: 'rev', items: ['x'] });
    await svc.client.waitForPhase(batch.id);
    const d = await waitUntil('attempt', async () => (await svc.client.json('GET', `/v1/batches/${batch.id}/webhook-deliveries`)).body.items[0]?.attempts[0]);
    expect(d.error).toMatch(/refused: 10\.255\.255\.1 resolves to 10\.255\.255\.1, a private address/);
    expect(d.statusCode).toBeNull();
  });

  it('bad input gets 4xx problem+json and changes nothing; another tenant gets 404', async () => {
    const bad: Array<[string, string, unknown, number, string]> = [
      ['POST', '/v1/webhook-endpoints', { url: 'ftp://example.com/x' }, 422, '/url'],
      ['POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:1/x', events: ['batch.exploded'] }, 422, '/events/0'],
      ['POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:1/x', extra: 1 }, 422, '/extra'],
      ['POST', '/v1/batches', { task: 'rev', items: ['x'], webhook: { url: 'file:///etc/passwd' } }, 422, '/webhook/url'],
      ['POST', '/v1/batches', { task: 'rev', items: ['x'], webhook: { url: 'http://127.0.0.1:1/x', events: ['nope'] } }, 422, '/webhook/events/0'],
      ['POST', '/v1/batches', { task: 'rev', items: ['x'], webhook: { url: 'http://10.0.0.1/x' } }, 422, '/webhook/url'],
      ['POST', '/v1/webhook-endpoints', { url: 'http://169.254.169.254/latest' }, 422, '/url'],
    ];
    for (const [method, path, body, status, pointer] of bad) {
      const r = await svc.client.json(method, path, body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.headers.get('content-type')).toMatch(/problem\+json/);
      expect(r.body.errors.map((e: any) => e.pointer)).toContain(pointer);
    }
    expect((await svc.client.json('GET', '/v1/webhook-endpoints')).body.items).toEqual([]);
    expect((await svc.client.json('GET', '/v1/batches')).body.items.filter((b: any) => b.spec.webhook?.url?.startsWith('http://10.'))).toEqual([]);
    for (const [method, path] of [['GET', '/v1/webhook-endpoints/nope'], ['PATCH', '/v1/webhook-endpoints/nope'], ['POST', '/v1/webhook-deliveries/nope/redeliver'], ['GET', '/v1/batches/nope/webhook-deliveries']]) {
      const r = await svc.client.json(method, path, method === 'PATCH' ? { enabled: false } : undefined);
      expect(r.status, path).toBe(404);
    }

    rec = await startReceiver();
    const ep = (await svc.client.json('POST', '/v1/webhook-endpoints', { url: rec.url })).body;
    const other = await svc.newTenant();
    expect((await other.json('GET', '/v1/webhook-endpoints')).body.items).toEqual([]);
    expect((await other.json('GET', `/v1/webhook-endpoints/${ep.id}`)).status).toBe(404);
    expect((await other.json('PATCH', `/v1/webhook-endpoints/${ep.id}`, { enabled: false })).status).toBe(404);
    expect((await other.json('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`)).status).toBe(404);
    expect((await other.json('DELETE', `/v1/webhook-endpoints/${ep.id}`)).status).toBe(404);
    expect((await other.json('GET', `/v1/webhook-endpoints/${ep.id}/webhook-deliveries`)).status).toBe(404);
    // another tenant's batch finishing sends nothing to this tenant's endpoint
    const theirs = await other.createBatch({ task: 'rev', items: ['x'] });
    await other.waitForPhase(theirs.id);
    const mine = await svc.client.createBatch({ task: 'rev', items: ['x'] });
    await svc.client.waitForPhase(mine.id);
    await waitUntil('my delivery', () => rec.received.length === 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(rec.received.map((r) => JSON.parse(r.body).data.batchId)).toEqual([mine.id]);
    const [delivery] = (await svc.client.json('GET', `/v1/batches/${mine.id}/webhook-deliveries`)).body.items;
    expect((await other.json('POST', `/v1/webhook-deliveries/${delivery.id}/redeliver`)).status).toBe(404);
    expect((await other.json('GET', `/v1/batches/${mine.id}/webhook-deliveries`)).status).toBe(404);
    expect((await other.json('GET', '/v1/batch-webhook-secret')).body.secret).not.toBe((await svc.client.json('GET', '/v1/batch-webhook-secret')).body.secret);
    expect((await svc.client.json('PATCH', `/v1/webhook-endpoints/${ep.id}`, { url: 'gopher://x' })).status).toBe(422);
    expect((await svc.client.json('GET', `/v1/webhook-endpoints/${ep.id}`)).body.url).toBe(rec.url);
  });
});

describe('webhook targets without an allowlist', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
  });
  afterAll(async () => svc?.close());

  it('loopback, private and link-local targets are refused at creation', async () => {
    for (const url of ['http://127.0.0.1:8080/x', 'http://localhost/x', 'http://[::1]/x', 'http://192.168.0.10/x', 'http://[fe80::1]/x', 'http://0.0.0.0/x']) {
      const r = await svc.client.json('POST', '/v1/webhook-endpoints', { url });
      expect(r.status, url).toBe(422);
      expect(r.body.errors[0]).toMatchObject({ pointer: '/url' });
      const b = await svc.client.json('POST', '/v1/batches', { task: 'rev', items: ['x'], webhook: { url } });
      expect(b.status, url).toBe(422);
      expect(b.body.errors[0].pointer).toBe('/webhook/url');
    }
    expect((await svc.client.json('GET', '/v1/webhook-endpoints')).body.items).toEqual([]);
    expect((await svc.client.json('GET', '/v1/batches')).body.items).toEqual([]);
  });

  it('IPv6 forms that embed a loopback, private or metadata IPv4 address, and Teredo, are refused at creation', async () => {
    const urls = [
      'http://[::127.0.0.1]/x',
      'http://[::ffff:7f00:1]/x',
      'http://[::ffff:0:7f00:1]/x',
      'http://[64:ff9b::7f00:1]/x',
      'http://[64:ff9b::a9fe:a9fe]/latest',
      'http://[2002:7f00:1::1]/x',
      'http://[2002:a00:1::]/x',
      'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x',
    ];
    for (const url of urls) {
      const r = await svc.client.json('POST', '/v1/webhook-endpoints', { url });
      expect(r.status, url).toBe(422);
      expect(r.body.errors[0]).toMatchObject({ pointer: '/url' });
      expect(r.body.errors[0].detail, url).toMatch(/a (loopback|private|metadata|reserved) address/);
      const b = await svc.client.json('POST', '/v1/batches', { task: 'rev', items: ['x'], webhook: { url } });
      expect(b.status, url).toBe(422);
      expect(b.body.errors[0].pointer).toBe('/webhook/url');
    }
    expect((await svc.client.json('GET', '/v1/webhook-endpoints')).body.items).toEqual([]);
    expect((await svc.client.json('GET', '/v1/batches')).body.items).toEqual([]);
  });
});
