import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { assertPlainSegment, publishedName, splitBlobKey } from '../domain/blob-keys.js';
import { BlobStoreUnavailableError, type BlobStore } from './blob-store.js';

/**
 * S3's smallest part, one part sent at a time: an upload holds the part being sent and the one
 * being filled (~10 MiB, 20-35 MiB measured with the SDK's own copies), whatever the result's
 * size. Sending parts one by one costs little: the worker's upload to us is the slower leg.
 */
const PART_BYTES = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT = 1;
/** DeleteObjects takes at most 1000 keys per request. */
const DELETE_BATCH = 1000;

export interface S3BlobStoreOptions {
  client: S3Client;
  bucket: string;
  /** object keys start with `<prefix>/`; empty: at the bucket's root */
  prefix: string;
  /** keys per listing page (S3's maximum is 1000); smaller only to exercise paging in tests */
  pageSize?: number;
}

/**
 * Blobs as objects: `<prefix>/<batchId>/<name>.<unique>.txt` in one bucket. The key this store
 * hands out stays `<batchId>/<file>`, as for the local store, so stored results do not depend on
 * where the bucket prefix points.
 *
 * An upload streams its body as a multipart upload (lib-storage `Upload`, a bounded number of
 * parts in memory) to a key with 96 random bits of its own: S3 only makes an object visible once
 * the upload completes, and no other upload can complete under the same key. A body that fails
 * aborts the multipart upload, which drops its parts; what a crash leaves behind (incomplete
 * multipart uploads) is what sweepStale aborts.
 */
export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly root: string;
  private readonly pageSize: number;

  constructor(o: S3BlobStoreOptions) {
    this.client = o.client;
    this.bucket = o.bucket;
    this.root = o.prefix === '' ? '' : `${o.prefix}/`;
    this.pageSize = o.pageSize ?? 1000;
  }

  async put(batchId: string, name: string, body: AsyncIterable<Uint8Array>): Promise<string> {
    assertPlainSegment('batch', batchId);
    assertPlainSegment('name', name);
    const key = `${batchId}/${publishedName(name, randomBytes(12).toString('hex'))}`;
    // The body's own error is what the caller must see (a client gone, a limit), not the SDK's wrapping.
    let bodyError: unknown;
    const source = async function* () {
      try {
        yield* body;
      } catch (err) {
        bodyError = err;
        throw err;
      }
    };
    const stream = Readable.from(source(), { objectMode: false });
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: this.root + key,
        Body: stream,
        ContentType: 'text/plain; charset=utf-8',
        // Belt and braces beside the unique key: the server refuses (412) to complete over an
        // existing object (AWS S3 and SeaweedFS honour it on PutObject and CompleteMultipartUpload).
        IfNoneMatch: '*',
      },
      partSize: PART_BYTES,
      queueSize: PARTS_IN_FLIGHT,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      // The store failed first: stop reading the body (its generator's cleanup runs).
      stream.destroy();
      throw bodyError ?? unavailableOr(err);
    }
    return key;
  }

  read(key: string): AsyncIterable<Uint8Array> {
    const objectKey = this.objectKey(key);
    const { client, bucket } = this;
    return (async function* () {
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey })).catch((err: unknown) => {
        throw unavailableOr(err);
      });
      yield* got.Body as Readable;
    })();
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async deleteBatch(batchId: string): Promise<void> {
    assertPlainSegment('batch', batchId);
    const prefix = `${this.root}${batchId}/`;
    const pending: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: this.pageSize, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) if (o.Key) pending.push(o.Key);
      while (pending.length >= DELETE_BATCH) await this.deleteKeys(pending.splice(0, DELETE_BATCH));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    if (pending.length > 0) await this.deleteKeys(pending);
  }

  async sweepStale(olderThanMs: number, now = Date.now()): Promise<number> {
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.root, MaxUploads: this.pageSize, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId) continue;
        if (!u.Initiated || now - u.Initiated.getTime() < olderThanMs) continue;
        // Initiated is when the upload began; a long upload still sending parts is not stale.
        const lastPart = await this.lastPartAt(u.Key, u.UploadId);
        if (lastPart !== undefined && now - lastPart < olderThanMs) continue;
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }));
        removed++;
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return removed;
  }

  /** When the newest part of an incomplete upload arrived; undefined when it has none. */
  private async lastPartAt(key: string, uploadId: string): Promise<number | undefined> {
    let latest: number | undefined;
    let marker: string | undefined;
    do {
      const page = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
      for (const p of page.Parts ?? []) {
        const at = p.LastModified?.getTime();
        if (at !== undefined && (latest === undefined || at > latest)) latest = at;
      }
      marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (marker);
    return latest;
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    const answer = await this.client.send(
      new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
    );
    const failed = answer.Errors ?? [];
    if (failed.length > 0) throw new Error(`could not delete ${failed.length} blob(s), first ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message}`);
  }

  private objectKey(key: string): string {
    const { batchId, file } = splitBlobKey(key);
    return `${this.root}${batchId}/${file}`;
  }
}

/**
 * An error that says the object storage is unreachable or failing (no HTTP answer at all, or a
 * 5xx) becomes BlobStoreUnavailableError; a refusal with a 4xx (a missing object, a precondition)
 * stays what it is.
 */
function unavailableOr(err: unknown): unknown {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status !== undefined && status < 500) return err;
  return new BlobStoreUnavailableError(`the object storage cannot be reached: ${(err as Error).message ?? String(err)}`, { cause: err });
}
