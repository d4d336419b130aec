import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * A full garbage collection after every {@link COLLECT_EVERY_BYTES} of NDJSON upload stored.
 *
 * Why: what an upload keeps is bounded (one read of the body and one chunk of rows), but what it
 * allocates is not: about a kilobyte per item of short-lived strings and objects, some of which
 * the young generation promotes. V8 collects the old generation only when it reaches a limit it
 * derives from the heap maximum, gigabytes on a large machine, so the server's RSS grew with the
 * size of the upload (bench A: 156 MB at 1,000,000 items, 197 MB at 5,000,000) though it held
 * no more data. Collecting as the upload goes keeps it flat; every 8 MB rather than 16, since
 * the PostgreSQL path (which also builds COPY text) makes about twice the garbage per item. Node flags (--max-old-space-size)
 * would do it for the whole process, but the server cannot set them for itself.
 * Measured: docs/operations.md, "What the server's memory depends on".
 */
export const COLLECT_EVERY_BYTES = 8 * 1024 * 1024;

export type Collector = (options: { type: 'major'; execution: 'async' | 'sync' }) => Promise<void> | void;

let collector: Collector | undefined | null;

/** V8's gc(), made available at run time: the same function `node --expose-gc` installs. */
export function collectorFunction(): Collector | null {
  if (collector === undefined) {
    try {
      const exposed = (globalThis as { gc?: Collector }).gc;
      if (exposed) collector = exposed;
      else {
        v8.setFlagsFromString('--expose-gc');
        collector = vm.runInNewContext('gc') as Collector;
      }
    } catch {
      collector = null;
    }
  }
  return collector;
}

/** Counts an upload's stored bytes; every COLLECT_EVERY_BYTES, asks V8 for a full collection (run as a task, not in this call). */
export class UploadGarbage {
  private sinceCollection = 0;

  constructor(
    private readonly everyBytes = COLLECT_EVERY_BYTES,
    private readonly collect: () => void = () => void collectorFunction()?.({ type: 'major', execution: 'async' }),
  ) {}

  stored(bytes: number): void {
    this.sinceCollection += bytes;
    if (this.sinceCollection < this.everyBytes) return;
    this.sinceCollection = 0;
    this.collect();
  }
}
