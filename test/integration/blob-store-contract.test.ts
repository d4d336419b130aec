import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateMultipartUploadCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BlobStore } from '../../src/blobs/blob-store.js';
import { LocalBlobStore } from '../../src/blobs/local-blob-store.js';
import { S3BlobStore } from '../../src/blobs/s3-blob-store.js';
import { startTestS3, type TestS3 } from '../helpers/s3.js';
import { localBlobInspector, s3BlobInspector, type BlobInspector } from '../helpers/blob-inspectors.js';

/**
 * One contract, both blob stores: the local directory and S3 (a real SeaweedFS `weed mini`,
 * test/helpers/s3.ts). Each test gets a fresh store (own directory, own key prefix), plus an
 * inspector that sees what the store really holds (files, objects, partial uploads).
 */
interface Fixture extends BlobInspector {
  blobs: BlobStore;
  /** Starts an upload the way a crash would leave it, with some data already stored; `more()` sends more data. */
  startPartial(batchId: string, name: string): Promise<{ more(): Promise<void> }>;
  /** A store of the same kind that lists in pages of `pageSize` (local: no paging). */
  withPageSize(pageSize: number): BlobStore;
}

interface Adapter {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  fixture(): Fixture;
}

const localAdapter = (): Adapter => {
  const roots: string[] = [];
  return {
    name: 'local directory',
    async setup() {},
    async teardown() {
      for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
    },
    fixture() {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-blobs-'));
      roots.push(root);
      return {
        blobs: new LocalBlobStore(root),
        ...localBlobInspector(root),
        async startPartial(batchId, name) {
          fs.mkdirSync(path.join(root, batchId), { recursive: true });
          const file = path.join(root, batchId, `${name}.${randomBytes(4).toString('hex')}.part`);
          fs.writeFileSync(file, 'crashed mid-upload');
          return { more: async () => fs.appendFileSync(file, 'more') };
        },
        withPageSize: () => new LocalBlobStore(root),
      };
    },
  };
};

/** One SeaweedFS server for the whole file (the contract's S3 run and the S3 specifics). */
let s3: TestS3;
let client: S3Client;
beforeAll(async () => {
  s3 = await startTestS3();
  client = new S3Client(s3.clientConfig());
}, 40 * 60_000);
afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

const s3Adapter = (): Adapter => {
  return {
    name: 'S3 (SeaweedFS)',
    async setup() {},
    async teardown() {},
    fixture() {
      const prefix = `p${randomBytes(4).toString('hex')}/blobs`;
      return {
        blobs: new S3BlobStore({ client, bucket: s3.bucket, prefix }),
        ...s3BlobInspector(client, s3.bucket, prefix),
        async startPartial(batchId, name) {
          const Key = `${prefix}/${batchId}/${name}.${randomBytes(4).toString('hex')}.txt`;
          const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key }));
          let part = 0;
          const more = async () => {
            await client.send(new UploadPartCommand({ Bucket: s3.bucket, Key, UploadId, PartNumber: ++part, Body: Buffer.alloc(5 * 1024 * 1024, 1) }));
          };
          await more();
          return { more };
        },
        withPageSize: (pageSize) => new S3BlobStore({ client, bucket: s3.bucket, prefix, pageSize }),
      };
    },
  };
};

/** V8's full collection (the flag must be set before the function is looked up). */
v8.setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

describe.each([localAdapter(), s3Adapter()])('blob store contract: $name', (adapter) => {
  let f: Fixture;
  beforeAll(() => adapter.setup());
  afterAll(() => adapter.teardown());
  beforeEach(() => {
    f = adapter.fixture();
  });

  const readAll = async (key: string, blobs = f.blobs) => {
    const out: Buffer[] = [];
    for await (const c of blobs.read(key)) out.push(Buffer.from(c));
    return Buffer.concat(out).toString();
  };
  const fileOf = (key: string) => key.split('/')[1]!;

  it('publishes a body under a fresh key and streams it back', async () => {
    const key = await f.blobs.put('b1', '0.1', chunks('hello ', 'world'));
    expect(key).toMatch(/^b1\/0\.1\.[0-9a-f]{24}\.txt$/);
    expect(await readAll(key)).toBe('hello world');
    expect(await f.published('b1')).toEqual([fileOf(key)]);
    // an empty body is a blob too
    const empty = await f.blobs.put('b1', '1.1', chunks());
    expect(await readAll(empty)).toBe('');
  });

  it('never overwrites: uploads under one name, even concurrent ones, each get their own blob', async () => {
    const keys = await Promise.all(Array.from({ length: 8 }, (_, k) => f.blobs.put('b1', '0.1', chunks(`body-${k}-`, 'x'.repeat(100_000)))));
    expect(new Set(keys).size).toBe(8);
    for (const [k, key] of keys.entries()) expect(await readAll(key)).toBe(`body-${k}-` + 'x'.repeat(100_000));
    expect(await f.published('b1')).toHaveLength(8);
  });

  it('streams 64 MiB from a generator in and out with bounded memory', { timeout: 120_000 }, async () => {
    const size = 64 * 1024 * 1024;
    const chunk = 256 * 1024;
    const sent = createHash('sha256');
    async function* generated(): AsyncGenerator<Uint8Array> {
      for (let off = 0; off < size; off += chunk) {
        const c = randomBytes(chunk);
        sent.update(c);
        yield c;
      }
    }
    // Memory held, not memory churned: every sample follows a full collection, so a body held
    // whole counts and parts already sent (garbage until the next collection) do not.
    const held = () => {
      collectGarbage();
      return process.memoryUsage().rss;
    };
    const baseline = held();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, held())), 25);
    try {
      const key = await f.blobs.put('big', '0.1', generated());
      const got = createHash('sha256');
      let bytes = 0;
      for await (const c of f.blobs.read(key)) {
        got.update(c);
        bytes += c.byteLength;
      }
      expect(bytes).toBe(size);
      expect(got.digest('hex')).toBe(sent.digest('hex'));
    } finally {
      clearInterval(sampler);
    }
    // A buffered body would add 64 MiB or more; a streamed one holds a few parts at a time.
    expect(peak - baseline).toBeLessThan(40 * 1024 * 1024);
  });

  it('a body that fails midway (even after parts were stored) publishes nothing and leaves nothing; the error comes back as is', async () => {
    const boom = new Error('client went away');
    async function* failing(): AsyncGenerator<Uint8Array> {
      // past one S3 part, so a multipart upload with stored parts exists when the body fails
      for (let k = 0; k < 7; k++) yield randomBytes(1024 * 1024);
      throw boom;
    }
    await expect(f.blobs.put('b1', '0.1', failing())).rejects.toBe(boom);
    async function* failsAtOnce(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('x'.repeat(50_000));
      throw boom;
    }
    await expect(f.blobs.put('b1', '1.1', failsAtOnce())).rejects.toBe(boom);
    expect(await f.published('b1')).toEqual([]);
    expect(await f.partials('b1')).toBe(0);
  });

  it('delete removes one blob (twice is fine); deleteBatch removes a batch and nothing else', async () => {
    const a = await f.blobs.put('b1', '0.1', chunks('a'));
    const b = await f.blobs.put('b1', '1.1', chunks('b'));
    const c = await f.blobs.put('b2', '0.1', chunks('c'));
    const d = await f.blobs.put('b10', '0.1', chunks('d'));
    await f.blobs.delete(a);
    await f.blobs.delete(a);
    expect(await f.published('b1')).toEqual([fileOf(b)]);
    await f.blobs.deleteBatch('b1');
    expect(await f.published('b1')).toEqual([]);
    expect(await readAll(c)).toBe('c');
    // a batch id that is a prefix of another's does not take the other's blobs along
    expect(await readAll(d)).toBe('d');
    await f.blobs.deleteBatch('never-had-blobs');
  });

  it('deleteBatch follows the listing over many pages', { timeout: 120_000 }, async () => {
    const keys: string[] = [];
    for (let k = 0; k < 60; k += 20) {
      keys.push(...(await Promise.all(Array.from({ length: 20 }, (_, j) => f.blobs.put('paged', `${k + j}.1`, chunks(`r${k + j}`))))));
    }
    const kept = await f.blobs.put('other', '0.1', chunks('kept'));
    expect(await f.published('paged')).toHaveLength(60);
    await f.withPageSize(7).deleteBatch('paged');
    expect(await f.published('paged')).toEqual([]);
    expect(await readAll(kept)).toBe('kept');
  });

  it('sweepStale removes only partial uploads untouched for long enough', { timeout: 60_000 }, async () => {
    const kept = await f.blobs.put('b1', '0.1', chunks('published'));
    await f.startPartial('b1', '1.1');
    await f.startPartial('b2', '0.1');
    const stillSending = await f.startPartial('b1', '3.1');
    await sleep(3000);
    await stillSending.more();
    await f.startPartial('b1', '2.1');
    // Two are untouched for 3 s; one started 3 s ago but just sent more; one just started.
    expect(await f.blobs.sweepStale(2000)).toBe(2);
    expect(await f.partials('b1')).toBe(2);
    expect(await f.partials('b2')).toBe(0);
    expect(await readAll(kept)).toBe('published');
    expect(await f.published('b1')).toEqual([fileOf(kept)]);
  });

  it('refuses keys and names that are not plain (a key never leaves its batch)', async () => {
    await expect(f.blobs.put('../b1', '0.1', chunks('x'))).rejects.toThrow(/not a plain name/);
    await expect(f.blobs.put('b1', '../0.1', chunks('x'))).rejects.toThrow(/not a plain name/);
    await expect(f.blobs.put('b1', 'a/b', chunks('x'))).rejects.toThrow(/not a plain name/);
    await expect(f.blobs.delete('b1/../../etc')).rejects.toThrow(/blob key/);
    expect(() => f.blobs.read('../outside/file.txt')).toThrow(/blob/);
    await expect(f.blobs.deleteBatch('..')).rejects.toThrow(/not a plain name/);
  });
});

describe('S3 blob store, S3 specifics', () => {
  it('keys live under the configured prefix; the key handed out does not include it', async () => {
    const blobs = new S3BlobStore({ client, bucket: s3.bucket, prefix: 'team/a' });
    const key = await blobs.put('b1', '0.1', chunks('x'));
    expect(key).toMatch(/^b1\//);
    expect(await s3BlobInspector(client, s3.bucket, 'team/a').published('b1')).toEqual([key.split('/')[1]]);
    // a store on another prefix of the same bucket sees none of it
    expect(await s3BlobInspector(client, s3.bucket, 'team/b').published('b1')).toEqual([]);
    const atRoot = new S3BlobStore({ client, bucket: s3.bucket, prefix: '' });
    const rootKey = await atRoot.put('b9', '0.1', chunks('root'));
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'b9x/unrelated.txt', Body: 'stays' }));
    await atRoot.deleteBatch('b9');
    await expect(readText(atRoot, rootKey)).rejects.toMatchObject({ name: 'NoSuchKey' });
    expect(await s3BlobInspector(client, s3.bucket, '').published('b9x')).toEqual(['unrelated.txt']);
  });
});

describe('S3 blob store, deleting a batch of more than 1000 blobs', () => {
  it('lists over pages of 1000 and deletes at most 1000 keys a request', { timeout: 120_000 }, async () => {
    const prefix = `p${randomBytes(4).toString('hex')}`;
    const counted = new S3Client(s3.clientConfig());
    const deleteSizes: number[] = [];
    counted.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteObjectsCommand') deleteSizes.push((args.input as { Delete: { Objects: unknown[] } }).Delete.Objects.length);
        return next(args);
      },
      { step: 'initialize', name: 'countDeletedKeys' },
    );
    try {
      const total = 1205;
      for (let k = 0; k < total; k += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, total - k) }, (_, j) =>
            client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/big/${k + j}.1.${'0'.repeat(24)}.txt`, Body: 'x' })),
          ),
        );
      }
      const inspector = s3BlobInspector(client, s3.bucket, prefix);
      expect(await inspector.published('big')).toHaveLength(total);
      await new S3BlobStore({ client: counted, bucket: s3.bucket, prefix }).deleteBatch('big');
      expect(await inspector.published('big')).toEqual([]);
      expect(deleteSizes).toEqual([1000, 205]);
    } finally {
      counted.destroy();
    }
  });
});

async function readText(blobs: BlobStore, key: string): Promise<string> {
  let text = '';
  for await (const c of blobs.read(key)) text += Buffer.from(c).toString();
  return text;
}
