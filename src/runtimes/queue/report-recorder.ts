import { applyReportGroup, applyReports, type ApplyResult } from '../../store/reports.js';
import type { Store } from '../../store/store.js';
import type { Report } from './protocol.js';

interface Waiting {
  report: Report;
  resolve(result: ApplyResult): void;
  reject(err: unknown): void;
}

/**
 * Records workers' reports one batch at a time: the reports of a batch that arrive while one of
 * its writes is in flight are recorded together in the next one (one transaction, one lock of
 * the batch row), instead of each waiting for the batch row on its own connection. Reports of
 * different batches are recorded concurrently. If a group fails for a reason of its own reports
 * (not the database being unreachable), each is tried alone, so one bad report fails only itself.
 */
export class ReportRecorder {
  private readonly waiting = new Map<string, Waiting[]>();
  private readonly busy = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly isUnavailable: (err: unknown) => boolean,
  ) {}

  record(report: Report): Promise<ApplyResult> {
    return new Promise<ApplyResult>((resolve, reject) => {
      const queue = this.waiting.get(report.batchId);
      if (queue) queue.push({ report, resolve, reject });
      else this.waiting.set(report.batchId, [{ report, resolve, reject }]);
      if (!this.busy.has(report.batchId)) void this.drain(report.batchId);
    });
  }

  private async drain(batchId: string): Promise<void> {
    this.busy.add(batchId);
    try {
      for (let group = this.waiting.get(batchId); group; group = this.waiting.get(batchId)) {
        this.waiting.delete(batchId);
        await this.write(batchId, group);
      }
    } finally {
      this.busy.delete(batchId);
    }
  }

  private async write(batchId: string, group: Waiting[]): Promise<void> {
    try {
      const results = await this.store.write(applyReportGroup(batchId, group.map((w) => w.report)));
      group.forEach((w, k) => w.resolve(results[k]));
    } catch (err) {
      if (group.length === 1 || this.isUnavailable(err)) {
        for (const w of group) w.reject(err);
        return;
      }
      for (const w of group) {
        await this.store.write(applyReports(batchId, w.report.leaseId, w.report.items)).then(w.resolve, w.reject);
      }
    }
  }
}
