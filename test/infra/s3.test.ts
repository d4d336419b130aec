import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestS3, type TestS3 } from '../helpers/s3.js';

/**
 * Proves the S3 test infrastructure (test/helpers/s3.ts) on a real SeaweedFS `weed mini`: put,
 * a streamed multipart upload read back streamed with the same hash, listing, deleting by
 * prefix, and anonymous requests refused. The first run on a machine builds weed from its Go
 * module (10-30 min on 2 cores, cached in ~/.cache/fanout-s3 afterwards): hence the long
 * beforeAll timeout. A failed build fails this file; it never skips.
 */
const BUILD_AND_START_TIMEOUT_MS = 40 * 60_000;
let s3: TestS3;
let client: S3Client;

beforeAll(async () => {
  s3 = await startTestS3();
  client = new S3Client(s3.clientConfig());
}, BUILD_AND_START_TIMEOUT_MS);

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

/** `size` deterministic pseudo-random bytes in 1 MiB chunks, and their SHA-256 once fully read. */
function generated(size: number): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let state = createHash('sha256').update('seed').digest();
  let sent = 0;
  const stream = new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      const chunk = Buffer.alloc(Math.min(1 << 20, size - sent));
      for (let off = 0; off < chunk.length; off += state.length) {
        state = createHash('sha256').update(state).digest();
        state.copy(chunk, off);
      }
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex') };
}

async function sha256Of(body: Readable): Promise<{ hex: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hex: hash.digest('hex'), bytes };
}

async function listKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of paginateListObjectsV2({ client, pageSize: 100 }, { Bucket: s3.bucket, Prefix: prefix })) {
    for (const o of page.Contents ?? []) keys.push(o.Key!);
  }
  return keys.sort();
}

describe('test S3 server (SeaweedFS weed mini)', () => {
  it('answers on 127.0.0.1 with the bucket it was started with', () => {
    expect(s3.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s3.bucket).toBe('fanout-test');
  });

  it('puts an object and reads it back', async () => {
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'small/hello.txt', Body: 'hello, fanout', ContentType: 'text/plain' }));
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'small/hello.txt' }));
    expect(await got.Body!.transformToString()).toBe('hello, fanout');
    expect(got.ContentType).toBe('text/plain');
  });

  it('a streamed multipart upload of 20 MiB comes back streamed with the same SHA-256', async () => {
    const size = 20 * 1024 * 1024;
    const source = generated(size);
    const upload = new Upload({
      client,
      params: { Bucket: s3.bucket, Key: 'large/result.bin', Body: source.stream },
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
    });
    let parts = 0;
    upload.on('httpUploadProgress', () => parts++);
    await upload.done();
    expect(parts).toBeGreaterThanOrEqual(4);
    const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'large/result.bin' }));
    expect(head.ContentLength).toBe(size);
    // A multipart object's ETag is "<md5 of the part md5s>-<part count>".
    expect(head.ETag).toMatch(/-4"$/);
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'large/result.bin' }));
    expect(await sha256Of(got.Body as Readable)).toEqual({ hex: source.digest(), bytes: size });
  });

  it('lists by prefix across pages and deletes by prefix', async () => {
    const keys = Array.from({ length: 250 }, (_, i) => `batch-1/items/${String(i).padStart(4, '0')}.json`);
    for (let i = 0; i < keys.length; i += 25) {
      await Promise.all(keys.slice(i, i + 25).map((Key) => client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: `{"i":"${Key}"}` }))));
    }
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'batch-2/items/0000.json', Body: '{}' }));
    expect(await listKeys('batch-1/')).toEqual(keys);

    const listed = await listKeys('batch-1/');
    const deleted = await client.send(
      new DeleteObjectsCommand({ Bucket: s3.bucket, Delete: { Objects: listed.map((Key) => ({ Key })), Quiet: true } }),
    );
    expect(deleted.Errors ?? []).toEqual([]);
    expect(await listKeys('batch-1/')).toEqual([]);
    expect(await listKeys('batch-2/')).toEqual(['batch-2/items/0000.json']);
  });

  it('refuses anonymous requests and wrong secrets', async () => {
    const anonymousPut = await fetch(`${s3.endpoint}/${s3.bucket}/anonymous.txt`, { method: 'PUT', body: 'nope' });
    expect(anonymousPut.status).toBe(403);
    const anonymousGet = await fetch(`${s3.endpoint}/${s3.bucket}/small/hello.txt`);
    expect(anonymousGet.status).toBe(403);
    const anonymousList = await fetch(`${s3.endpoint}/${s3.bucket}?list-type=2`);
    expect(anonymousList.status).toBe(403);

    const wrong = new S3Client({ ...s3.clientConfig(), credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: 'not-the-secret' }, maxAttempts: 1 });
    try {
      await expect(wrong.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    } finally {
      wrong.destroy();
    }
    await expect(client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'anonymous.txt' }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 },
    });
  });

  it('stop() ends the server and removes its directory', async () => {
    const other = await startTestS3({ bucket: 'second' });
    expect(fs.existsSync(other.dir)).toBe(true);
    await other.stop();
    expect(fs.existsSync(other.dir)).toBe(false);
    await expect(fetch(other.endpoint)).rejects.toThrow();
  });
});
