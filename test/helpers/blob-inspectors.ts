import fs from 'node:fs';
import path from 'node:path';
import { paginateListObjectsV2, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * What a blob store really holds, seen from outside it (files on disk, objects and incomplete
 * multipart uploads in a bucket), so tests check the store's effects without trusting its own API.
 */
export interface BlobInspector {
  /** published blob file names of a batch, sorted */
  published(batchId: string): Promise<string[]>;
  /** partial uploads of a batch still holding data (.part files, incomplete multipart uploads) */
  partials(batchId: string): Promise<number>;
}

export function localBlobInspector(root: string): BlobInspector {
  const files = (batchId: string) => {
    const dir = path.join(root, batchId);
    return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  };
  return {
    published: async (batchId) => files(batchId).filter((f) => !f.endsWith('.part')),
    partials: async (batchId) => files(batchId).filter((f) => f.endsWith('.part')).length,
  };
}

export function s3BlobInspector(client: S3Client, bucket: string, prefix: string): BlobInspector {
  const under = (batchId: string) => `${prefix === '' ? '' : `${prefix}/`}${batchId}/`;
  return {
    async published(batchId) {
      const names: string[] = [];
      for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: under(batchId) })) {
        for (const o of page.Contents ?? []) names.push(o.Key!.slice(under(batchId).length));
      }
      return names.sort();
    },
    async partials(batchId) {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: under(batchId) }));
      return (page.Uploads ?? []).length;
    },
  };
}
