import { S3Client } from '@aws-sdk/client-s3';
import type { BlobConfig } from '../config/config.js';
import type { BlobStore } from './blob-store.js';
import { LocalBlobStore } from './local-blob-store.js';
import { S3BlobStore } from './s3-blob-store.js';

const S3_CONNECT_TIMEOUT_MS = 10_000;
const S3_IDLE_TIMEOUT_MS = 120_000;

export interface OpenedBlobStore {
  blobs: BlobStore;
  /** Releases what the store holds open (the S3 client's connections); the local store holds nothing. */
  close(): void;
}

/** The blob store FANOUT_BLOB_URL names: a directory by default, else an S3 bucket (docs/operations.md "Result blobs"). */
export function openBlobStore(config: BlobConfig): OpenedBlobStore {
  if (config.kind === 'local') return { blobs: new LocalBlobStore(config.dir), close: () => {} };
  const client = new S3Client({
    region: config.region,
    // S3-compatible servers are addressed as <endpoint>/<bucket>/<key>: virtual-host names need DNS they rarely have.
    ...(config.endpoint ? { endpoint: config.endpoint, forcePathStyle: true } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    // The SDK waits forever by default: a bucket that stops answering would hold result uploads
    // and downloads open. An idle socket (nothing sent or received) fails the request instead.
    requestHandler: { connectionTimeout: S3_CONNECT_TIMEOUT_MS, socketTimeout: S3_IDLE_TIMEOUT_MS },
  });
  return { blobs: new S3BlobStore({ client, bucket: config.bucket, prefix: config.prefix }), close: () => client.destroy() };
}
