import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

/**
 * Capturing a task's output without holding more than a bounded amount in memory: a
 * {@link ResultSpool} keeps a result in memory up to the inline limit and spools it to a temp file
 * past that; a {@link TailBuffer} keeps only the last few KiB of stderr.
 */

/** Where a captured result ended up. */
export type SpooledResult = { kind: 'inline'; data: Buffer } | { kind: 'file'; path: string; bytes: number };

/** A writable sink holding at most `limit` bytes in memory; larger output goes to a temp file. */
export class ResultSpool extends Writable {
  /** total bytes written */
  bytes = 0;
  /** most bytes ever held in memory at once (for tests and metrics) */
  peakBufferedBytes = 0;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private dir?: string;
  private path?: string;
  private file?: WriteStream;

  constructor(private readonly limit: number) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (!this.file && this.buffered + chunk.length <= this.limit) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.peakBufferedBytes = Math.max(this.peakBufferedBytes, this.buffered);
      callback();
      return;
    }
    this.peakBufferedBytes = Math.max(this.peakBufferedBytes, this.buffered + chunk.length);
    this.writeToFile(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.file) return callback();
    const file = this.file;
    file.end();
    finished(file).then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.file?.destroy();
    callback(error);
  }

  /** The captured output; call after the stream finished. */
  captured(): SpooledResult {
    if (this.path) return { kind: 'file', path: this.path, bytes: this.bytes };
    return { kind: 'inline', data: Buffer.concat(this.chunks, this.buffered) };
  }

  /** Removes the temp file, if any. Safe to call more than once. */
  async cleanup(): Promise<void> {
    const dir = this.dir;
    this.dir = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
  }

  private async writeToFile(chunk: Buffer): Promise<void> {
    if (!this.file) {
      this.dir = await mkdtemp(join(tmpdir(), 'fanout-result-'));
      this.path = join(this.dir, 'result');
      this.file = createWriteStream(this.path);
      for (const held of this.chunks) this.file.write(held);
      this.chunks = [];
      this.buffered = 0;
    }
    if (!this.file.write(chunk)) await once(this.file, 'drain');
  }
}

/** Output text with exactly one trailing newline removed, as shells do for `$(…)` (but only one). */
export function stripOneNewline(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

/** Keeps the last `limit` bytes written to it. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit = 4096) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > this.limit * 2) this.compact();
  }

  /** The tail as text, starting on a character boundary, trailing whitespace trimmed. */
  text(): string {
    this.compact();
    let tail = this.chunks[0] ?? Buffer.alloc(0);
    let start = 0;
    // a cut in the middle of a UTF-8 sequence leaves continuation bytes (10xxxxxx) at the front
    while (start < tail.length && start < 4 && (tail[start] & 0xc0) === 0x80) start++;
    tail = tail.subarray(start);
    return tail.toString('utf8').trimEnd();
  }

  private compact(): void {
    const all = Buffer.concat(this.chunks, this.size);
    const tail = all.length > this.limit ? all.subarray(all.length - this.limit) : all;
    this.chunks = [Buffer.from(tail)];
    this.size = tail.length;
  }
}
