import type { Logger } from 'pino';
import type { StopContext } from '../lifecycle/stop-context.js';

/**
 * SIGTERM/SIGINT handling with a hard bound. The process first stops by itself: `stop` gets a
 * drain signal that aborts a little before the grace period ends, after which every part cuts
 * what it still waits for. Should anything still hang (a statement on a locked database, a
 * library ignoring the cut), a timer at the end of the grace period logs what was left and
 * exits anyway: on Kubernetes the alternative is a SIGKILL with nothing said.
 *
 * Either way the process logs ONE line about what it abandoned (`abandoned: {}` when nothing).
 * Exit codes: 0 (130 after SIGINT) when it stopped by itself, 1 when the grace period ran out.
 */
export interface ShutdownOptions {
  graceMs: number;
  logger: Logger;
  stop(ctx: StopContext): Promise<void>;
}

/**
 * When the parts are told to cut: early enough before the hard deadline for cut items to report
 * `returned` (1 s), BullMQ and Redis clients to close and the last line to be logged.
 */
export function drainTimeMs(graceMs: number): number {
  return Math.max(graceMs - Math.min(3000, graceMs / 3), 0);
}

export function onShutdown(o: ShutdownOptions): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const startedAt = Date.now();
    const abandoned: Record<string, unknown> = {};
    const drain = new AbortController();
    const ctx: StopContext = { drain: drain.signal, abandon: (what) => Object.assign(abandoned, what) };
    o.logger.info({ signal, graceSeconds: o.graceMs / 1000 }, 'stopping');
    const drainTimer = setTimeout(() => drain.abort(), drainTimeMs(o.graceMs));
    setTimeout(() => {
      o.logger.error({ abandoned, graceSeconds: o.graceMs / 1000 }, 'shutdown grace period over: exiting with work left');
      process.exit(1);
    }, o.graceMs);
    o.stop(ctx)
      .catch((err) => ctx.abandon({ stopError: (err as Error).message }))
      .finally(() => {
        clearTimeout(drainTimer);
        const level = Object.keys(abandoned).length > 0 ? 'warn' : 'info';
        o.logger[level]({ abandoned, ms: Date.now() - startedAt }, 'stopped');
        process.exit(signal === 'SIGINT' ? 130 : 0);
      });
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}
