import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { ItemReport, Report } from '../runtimes/queue/protocol.js';
import { describeError } from './errors.js';

/**
 * Sends the outcomes of one lease to the report queue: every `intervalMs` the items finished
 * since the last report (so long leases show progress), and a last report the lease runner awaits
 * before the lease job completes, so a crash in between re-runs the lease rather than losing a
 * result. A report that failed to send is retried with the same job id and the same items, so a
 * send that reached Redis but whose answer was lost is not duplicated under another id.
 */

/** BullMQ options of every report job. */
export const REPORT_JOB_OPTIONS = {
  removeOnComplete: true,
  removeOnFail: 1000,
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
} as const;

const FINAL_SEND_ATTEMPTS = 5;

export class LeaseReporter {
  private pending: ItemReport[] = [];
  private unsent?: { jobId: string; items: ItemReport[] };
  private seq = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  /** unique per execution of a lease: a re-run lease never reuses a report id of a crashed run */
  private readonly run = randomBytes(4).toString('hex');

  constructor(
    private readonly queue: Queue<Report>,
    private readonly lease: { batchId: string; leaseId: string },
    private readonly logger: Logger,
    intervalMs = 250,
  ) {
    this.timer = setInterval(() => {
      this.flush().catch((error: unknown) =>
        logger.warn({ leaseId: lease.leaseId, err: describeError(error) }, 'progress report failed; will retry'),
      );
    }, intervalMs);
    this.timer.unref();
  }

  /** Queues one item outcome for the next report. */
  add(item: ItemReport): void {
    this.pending.push(item);
  }

  /** Sends everything queued so far; reports go out one at a time, in order. */
  flush(): Promise<void> {
    this.chain = this.chain.catch(() => {}).then(() => this.send());
    return this.chain;
  }

  /** Stops the progress timer and sends the last report, retrying a few times before throwing. */
  async finish(): Promise<void> {
    clearInterval(this.timer);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.flush();
      } catch (error) {
        if (attempt >= FINAL_SEND_ATTEMPTS) throw error;
        this.logger.warn({ leaseId: this.lease.leaseId, attempt, err: describeError(error) }, 'final report failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
      }
    }
  }

  /** Stops the progress timer without sending (the lease failed for another reason). */
  abandon(): void {
    clearInterval(this.timer);
  }

  private async send(): Promise<void> {
    for (;;) {
      if (!this.unsent) {
        if (this.pending.length === 0) return;
        this.unsent = { jobId: this.nextJobId(), items: this.pending };
        this.pending = [];
      }
      const { jobId, items } = this.unsent;
      await this.queue.add('report', { batchId: this.lease.batchId, leaseId: this.lease.leaseId, items }, {
        ...REPORT_JOB_OPTIONS,
        jobId,
      });
      this.unsent = undefined;
    }
  }

  private nextJobId(): string {
    // BullMQ job ids may not contain ':'
    return `${this.lease.leaseId.replaceAll(':', '-')}.${this.run}.${this.seq++}`;
  }
}
