import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { WebhookConfig } from '../config/config.js';
import { nextRetryDelay } from '../domain/webhooks.js';
import type { Store } from '../store/store.js';
import { abandonDelivery, getDeliveryById, recordAttempt, takeDueDeliveries, type AttemptOutcome } from '../store/webhook-deliveries.js';
import { disableEndpoint, ensureBatchWebhookSecret, getEndpointById, signingSecrets } from '../store/webhook-endpoints.js';
import { closeRedis, settledBefore, soonerOf, unboundedStop, type StopContext } from '../lifecycle/stop-context.js';
import { sendWebhook } from './send.js';
import { signedHeaders } from './signer.js';

/**
 * Delivers webhooks in the dispatcher process (the one that writes the store). A poller puts
 * due pending deliveries on the `fanout-webhooks` queue with deterministic job ids
 * (`whd.<delivery>.<attempt>`: a duplicate add is ignored); a BullMQ worker signs and POSTs each
 * and records the attempt with the delivery's next state. The store is the source of truth: if
 * Redis loses a job, the poller puts it back once it has waited longer than an attempt can take.
 * See docs/architecture.md#webhooks.
 */

export const WEBHOOK_QUEUE = 'fanout-webhooks';

/** how long BullMQ may take to close at shutdown (a delivery in flight is retried later) */
const BULLMQ_CLOSE_MS = 2000;

export interface DelivererOptions {
  store: Store;
  redisUrl: string;
  prefix: string;
  logger: Logger;
  config: WebhookConfig;
  pollMs?: number;
  concurrency?: number;
}

interface DeliveryJob {
  deliveryId: string;
  attempt: number;
}

export class WebhookDeliverer {
  private queue?: Queue<DeliveryJob>;
  private worker?: Worker<DeliveryJob>;
  private connections: Redis[] = [];
  private timer?: NodeJS.Timeout;
  private polling = false;
  private stopped = false;

  constructor(private readonly o: DelivererOptions) {}

  async start(): Promise<void> {
    const producer = new Redis(this.o.redisUrl, { maxRetriesPerRequest: 2, enableOfflineQueue: false });
    const consumer = new Redis(this.o.redisUrl, { maxRetriesPerRequest: null });
    for (const c of [producer, consumer]) c.on('error', (err) => this.o.logger.debug({ err: err.message }, 'webhook redis error'));
    this.connections = [producer, consumer];
    this.queue = new Queue<DeliveryJob>(WEBHOOK_QUEUE, { connection: producer, prefix: this.o.prefix });
    this.queue.on('error', (err) => this.o.logger.debug({ err: err.message }, 'webhook queue error'));
    this.worker = new Worker<DeliveryJob>(WEBHOOK_QUEUE, async (job: Job<DeliveryJob>) => this.deliver(job.data), {
      connection: consumer,
      prefix: this.o.prefix,
      concurrency: this.o.concurrency ?? 16,
      // BullMQ renews the lock while an attempt runs, so it can be short: a job held by a
      // process that died is taken up again within about this long.
      lockDuration: 10_000,
      stalledInterval: 5_000,
    });
    this.worker.on('error', (err) => this.o.logger.warn({ err: err.message }, 'webhook worker error'));
    this.timer = setInterval(() => void this.poll(), this.o.pollMs ?? 250);
    void this.poll();
  }

  /**
   * Stops enqueueing and delivering. Forced when Redis is down (a graceful BullMQ close would wait
   * for it); a delivery cut mid-attempt is taken again once its job's lock lapses.
   */
  async stop(ctx: StopContext = unboundedStop()): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const redisUp = this.connections.every((c) => c.status === 'ready');
    if (!redisUp) ctx.abandon({ redis: 'unreachable' });
    const closing = Promise.all([this.worker?.close(!redisUp), this.queue?.close()]);
    await settledBefore(closing, soonerOf(ctx.drain, BULLMQ_CLOSE_MS));
    await Promise.all(this.connections.map((c) => closeRedis(c)));
  }

  /** Enqueues due deliveries. */
  async poll(): Promise<void> {
    if (this.polling || this.stopped || !this.queue) return;
    this.polling = true;
    try {
      const due = await this.o.store.write(takeDueDeliveries(Date.now(), this.o.config.timeoutMs + 60_000));
      if (due.length > 0) {
        await this.queue.addBulk(
          due.map((d) => ({
            name: 'deliver',
            data: { deliveryId: d.id, attempt: d.attempt },
            opts: { jobId: `${d.id}.${d.attempt}`, removeOnComplete: true, removeOnFail: { age: 86_400 } },
          })),
        );
      }
    } catch (err) {
      // Marked queued but not added: the requeue interval brings them back.
      this.o.logger.warn({ err: (err as Error).message }, 'webhook poll failed');
    } finally {
      this.polling = false;
    }
  }

  /** One attempt of one delivery; a job for an attempt that already happened does nothing. */
  async deliver({ deliveryId, attempt }: DeliveryJob): Promise<void> {
    const { store, config, logger } = this.o;
    const d = await store.read(getDeliveryById(deliveryId));
    if (!d || d.status !== 'pending' || d.attempts !== attempt - 1) return;
    let secrets: string[];
    if (d.endpointId) {
      const endpoint = await store.read(getEndpointById(d.endpointId));
      if (!endpoint) return;
      if (!endpoint.enabled) return store.write(abandonDelivery(d.id, `the endpoint is disabled${endpoint.disabledReason ? `: ${endpoint.disabledReason}` : ''}`));
      secrets = signingSecrets(endpoint);
    } else {
      secrets = signingSecrets(await store.write(ensureBatchWebhookSecret(d.tenantId)));
    }
    const at = Date.now();
    const headers = signedHeaders(secrets, `msg_${d.eventId}`, Math.floor(at / 1000), d.payload);
    const res = await sendWebhook(d.url, headers, d.payload, config.timeoutMs, config.allow);
    const ok = res.statusCode !== null && res.statusCode >= 200 && res.statusCode <= 299;
    let next: AttemptOutcome['next'];
    if (ok) next = { kind: 'succeeded' };
    else if (res.statusCode === 410) next = { kind: 'failed', reason: 'the receiver answered 410 Gone' };
    else {
      const delay = nextRetryDelay(config.retryScheduleMs, d.step + 1, Math.random());
      next = delay === null ? { kind: 'failed', reason: `gave up after ${d.step + 1} attempts: ${res.error ?? `HTTP ${res.statusCode}`}` } : { kind: 'retry', at: Date.now() + delay };
    }
    const recorded = await store.write(recordAttempt(d.id, attempt, { at, statusCode: res.statusCode, latencyMs: res.latencyMs, response: res.response, error: res.error, next }));
    if (recorded && res.statusCode === 410 && d.endpointId) {
      await store.write(disableEndpoint(d.endpointId, `the receiver answered 410 Gone to delivery ${d.id} at ${new Date(at).toISOString()}`));
    }
    logger.info({ deliveryId: d.id, eventId: d.eventId, attempt, statusCode: res.statusCode, latencyMs: res.latencyMs, error: res.error, next: next.kind }, 'webhook attempt');
  }
}
