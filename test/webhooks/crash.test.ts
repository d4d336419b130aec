import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';
import { startReceiver, type Receiver } from './receiver.js';

/**
 * At least once across a crash: the event is committed with the batch's final transition, so a
 * `fanout up` SIGKILLed before the receiver got it delivers it after the restart.
 */

const ENV = { FANOUT_WEBHOOK_ALLOW: '127.0.0.1', FANOUT_WEBHOOK_RETRY_SCHEDULE: '1s,1s,1s,1s,1s,1s,1s,1s,1s,1s', FANOUT_WEBHOOK_TIMEOUT_SECONDS: '1' };

describe('webhooks: fanout up killed before delivery', () => {
  let c: Cluster;
  let rec: Receiver | undefined;
  afterEach(async () => {
    await rec?.close();
    await c?.stopAll();
  });

  it('receiver down while the batch finishes, SIGKILL, restart, receiver up: delivered once, signed', { timeout: 120_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    const probe = await startReceiver();
    const port = probe.port;
    await probe.close();
    const first = await c.up(['--task', 'rev=rev'], { ...ENV, LOG_LEVEL: 'debug' });
    const ep = await c.client.json('POST', '/v1/webhook-endpoints', { url: `http://127.0.0.1:${port}/hook` });
    expect(ep.status).toBe(201);
    const batch = await c.client.createBatch({ task: 'rev', items: ['ab', 'cd', 'ef'] });
    await c.client.waitForPhase(batch.id);
    const pending = await waitUntil('a failed attempt', async () => {
      const d = (await c.client.json('GET', `/v1/batches/${batch.id}/webhook-deliveries`)).body.items[0];
      return d?.attempts.length >= 1 ? d : null;
    });
    expect(pending.status).toBe('pending');
    await first.kill('SIGKILL');

    const second = await c.up(['--task', 'rev=rev'], { ...ENV, LOG_LEVEL: 'debug' });
    rec = await startReceiver(port);
    await waitUntil('delivered after restart', () => rec!.received.length >= 1, 30_000);
    expect(new Webhook(ep.body.secret).verify(rec.received[0].body, rec.received[0].headers)).toMatchObject({ type: 'batch.succeeded', data: { batchId: batch.id } });
    expect(rec.received[0].headers['webhook-id']).toBe(pending.webhookId);
    const done = await waitUntil('logged', async () => {
      const d = (await c.client.json('GET', `/v1/batches/${batch.id}/webhook-deliveries`)).body.items[0];
      return d.status === 'succeeded' ? d : null;
    });
    expect(done.attempts.at(-1).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    expect(rec.received).toHaveLength(1);
    // secrets and signatures never reach the log, even at debug level
    const log = first.output() + second.output();
    expect(log).toContain('webhook attempt');
    expect(log).not.toContain('whsec_');
    expect(log).not.toContain(ep.body.secret.slice(6, 30));
    expect(log).not.toContain(rec.received[0].headers['webhook-signature']);
  });

  it('SIGKILL while the first attempt is in flight (nothing recorded yet): delivered after restart', { timeout: 120_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    // A receiver that takes requests and never answers: the attempt is in flight when the process dies.
    const held: http.IncomingMessage[] = [];
    const hanging = http.createServer((req) => void held.push(req.resume()));
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const port = (hanging.address() as AddressInfo).port;
    try {
      const first = await c.up(['--task', 'rev=rev'], { ...ENV, FANOUT_WEBHOOK_TIMEOUT_SECONDS: '60' });
      const ep = (await c.client.json('POST', '/v1/webhook-endpoints', { url: `http://127.0.0.1:${port}/hook` })).body;
      const batch = await c.client.createBatch({ task: 'rev', items: ['x'] });
      await c.client.waitForPhase(batch.id);
      await waitUntil('attempt in flight', () => held.length >= 1);
      await first.kill('SIGKILL');
      hanging.closeAllConnections();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));

      rec = await startReceiver(port);
      await c.up(['--task', 'rev=rev'], ENV);
      await waitUntil('delivered after restart', () => rec!.received.length >= 1, 60_000);
      expect(new Webhook(ep.secret).verify(rec.received[0].body, rec.received[0].headers)).toMatchObject({ type: 'batch.succeeded', data: { batchId: batch.id } });
      expect(rec.received[0].headers['webhook-id']).toBe(held[0].headers['webhook-id']);
    } finally {
      hanging.closeAllConnections();
      hanging.close();
    }
  });
});
