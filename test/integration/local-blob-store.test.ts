import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../src/blobs/local-blob-store.js';

/** The local blob store against a real directory. */
describe('LocalBlobStore', () => {
  let root: string;
  let blobs: LocalBlobStore;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-blobs-'));
    blobs = new LocalBlobStore(root);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
    for (const p of parts) yield Buffer.from(p);
  }
  const readAll = async (key: string) => {
    const out: Buffer[] = [];
    for await (const c of blobs.read(key)) out.push(Buffer.from(c));
    return Buffer.concat(out).toString();
  };
  const listing = (batch: string) => (fs.existsSync(path.join(root, batch)) ? fs.readdirSync(path.join(root, batch)).sort() : []);

  it('publishes a body under a fresh key and streams it back', async () => {
    const key = await blobs.put('b1', '0.1', chunks('hello ', 'world'));
    expect(key).toMatch(/^b1\/0\.1\.[0-9a-f]{24}\.txt$/);
    expect(await readAll(key)).toBe('hello world');
    expect(listing('b1')).toEqual([key.split('/')[1]]);
  });

  it('never overwrites: uploads under one name, even concurrent ones, each get their own blob', async () => {
    const keys = await Promise.all(Array.from({ length: 8 }, (_, k) => blobs.put('b1', '0.1', chunks(`body-${k}-`, 'x'.repeat(100_000)))));
    expect(new Set(keys).size).toBe(8);
    for (const [k, key] of keys.entries()) expect(await readAll(key)).toBe(`body-${k}-` + 'x'.repeat(100_000));
    expect(listing('b1')).toHaveLength(8);
  });

  it('a body that fails midway is not published and leaves no file; the error comes back as is', async () => {
    const boom = new Error('client went away');
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('x'.repeat(50_000));
      throw boom;
    }
    await expect(blobs.put('b1', '0.1', failing())).rejects.toBe(boom);
    expect(listing('b1')).toEqual([]);
  });

  it('delete removes one blob (twice is fine); deleteBatch removes a batch and nothing else', async () => {
    const a = await blobs.put('b1', '0.1', chunks('a'));
    const b = await blobs.put('b1', '1.1', chunks('b'));
    const c = await blobs.put('b2', '0.1', chunks('c'));
    await blobs.delete(a);
    await blobs.delete(a);
    expect(listing('b1')).toEqual([b.split('/')[1]]);
    await blobs.deleteBatch('b1');
    expect(fs.existsSync(path.join(root, 'b1'))).toBe(false);
    expect(await readAll(c)).toBe('c');
    await blobs.deleteBatch('never-had-blobs');
  });

  it('sweepStale removes only partial uploads untouched for long enough', async () => {
    const kept = await blobs.put('b1', '0.1', chunks('published'));
    const dir = path.join(root, 'b1');
    const hourAgo = (Date.now() - 3_600_000) / 1000;
    fs.writeFileSync(path.join(dir, '1.1.aaaa.part'), 'crashed mid-upload');
    fs.utimesSync(path.join(dir, '1.1.aaaa.part'), hourAgo, hourAgo);
    fs.writeFileSync(path.join(dir, '2.1.bbbb.part'), 'still being written');
    fs.utimesSync(path.join(dir, kept.split('/')[1]), hourAgo, hourAgo);
    fs.mkdirSync(path.join(root, 'b2'));
    fs.writeFileSync(path.join(root, 'b2', '0.1.cccc.part'), 'another batch, crashed');
    fs.utimesSync(path.join(root, 'b2', '0.1.cccc.part'), hourAgo, hourAgo);

    expect(await blobs.sweepStale(30 * 60_000)).toBe(2);
    expect(listing('b1')).toEqual([kept.split('/')[1], '2.1.bbbb.part'].sort());
    expect(listing('b2')).toEqual([]);
    expect(await readAll(kept)).toBe('published');
    expect(await new LocalBlobStore(path.join(root, 'missing')).sweepStale(0)).toBe(0);
  });

  it('refuses keys and names that are not plain (a key never leaves the root)', async () => {
    await expect(blobs.put('../b1', '0.1', chunks('x'))).rejects.toThrow(/not a plain name/);
    await expect(blobs.put('b1', '../0.1', chunks('x'))).rejects.toThrow(/not a plain name/);
    await expect(blobs.delete('b1/../../etc')).rejects.toThrow(/blob key/);
    expect(() => blobs.read('../outside/file.txt')).toThrow(/blob/);
    await expect(blobs.deleteBatch('..')).rejects.toThrow(/not a plain name/);
  });
});
