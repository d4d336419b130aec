import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { assertPlainSegment, isPartialName, partialName, publishedName, splitBlobKey } from '../domain/blob-keys.js';
import type { BlobStore } from './blob-store.js';

/**
 * Blobs as files under one directory: `<root>/<batchId>/<name>.<unique>.txt`.
 *
 * An upload writes `<name>.<unique>.part` beside its final name (same directory, so the same file
 * system), flushes it to disk, then publishes it with link(2), which fails rather than replace an
 * existing file, and drops the partial name. `unique` is 96 random bits per upload, so no two
 * uploads ever write the same file; a reader opening a published key always sees a whole blob.
 */
export class LocalBlobStore implements BlobStore {
  constructor(private readonly root: string) {}

  async put(batchId: string, name: string, body: AsyncIterable<Uint8Array>): Promise<string> {
    assertPlainSegment('batch', batchId);
    assertPlainSegment('name', name);
    const dir = path.join(this.root, batchId);
    await mkdir(dir, { recursive: true });
    const unique = randomBytes(12).toString('hex');
    const partial = path.join(dir, partialName(name, unique));
    const file = publishedName(name, unique);
    const handle = await open(partial, 'wx');
    try {
      for await (const chunk of body) await writeFully(handle, chunk);
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await rm(partial, { force: true });
      throw err;
    }
    try {
      await handle.close();
      await link(partial, path.join(dir, file));
    } finally {
      await rm(partial, { force: true });
    }
    await syncDirectory(dir);
    return `${batchId}/${file}`;
  }

  read(key: string): AsyncIterable<Uint8Array> {
    return createReadStream(this.pathOf(key));
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async deleteBatch(batchId: string): Promise<void> {
    assertPlainSegment('batch', batchId);
    await rm(path.join(this.root, batchId), { recursive: true, force: true });
  }

  async sweepStale(olderThanMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const batchDir of await entries(this.root)) {
      if (!batchDir.isDirectory()) continue;
      const dir = path.join(this.root, batchDir.name);
      for (const f of await entries(dir)) {
        if (!f.isFile() || !isPartialName(f.name)) continue;
        const file = path.join(dir, f.name);
        // An upload in progress keeps writing, which keeps its partial file's mtime fresh.
        const info = await stat(file).catch(() => null);
        if (!info || now - info.mtimeMs < olderThanMs) continue;
        await rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  private pathOf(key: string): string {
    const { batchId, file } = splitBlobKey(key);
    return path.join(this.root, batchId, file);
  }
}

async function writeFully(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/** Makes the new directory entry durable too; not every platform lets a directory be fsynced. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => null);
  if (!handle) return;
  await handle.sync().catch(() => undefined);
  await handle.close().catch(() => undefined);
}

async function entries(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
