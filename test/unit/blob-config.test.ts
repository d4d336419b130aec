import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('blob store configuration: FANOUT_BLOB_URL, FANOUT_S3_ENDPOINT, AWS_*', () => {
  it('unset: files under <data-dir>/blobs', () => {
    expect(loadConfig({ dataDir: '/srv/fanout' }, {}).blobs).toEqual({ kind: 'local', dir: path.resolve('/srv/fanout/blobs') });
    expect(loadConfig({ dataDir: '/srv/fanout' }, { FANOUT_BLOB_URL: '' }).blobs.kind).toBe('local');
  });

  it.each<[Record<string, string>, Record<string, unknown>]>([
    [{ FANOUT_BLOB_URL: 's3://results' }, { bucket: 'results', prefix: '', endpoint: undefined, region: undefined, credentials: undefined }],
    [{ FANOUT_BLOB_URL: 's3://results/fanout/prod/' }, { bucket: 'results', prefix: 'fanout/prod' }],
    [{ FANOUT_BLOB_URL: 's3://my.bucket-1/x', AWS_REGION: 'eu-west-1' }, { bucket: 'my.bucket-1', prefix: 'x', region: 'eu-west-1' }],
    // an S3-compatible server: region defaults to us-east-1 (most ignore it, the signature needs one)
    [{ FANOUT_BLOB_URL: 's3://b0b', FANOUT_S3_ENDPOINT: 'http://127.0.0.1:8333' }, { endpoint: 'http://127.0.0.1:8333', region: 'us-east-1' }],
    [{ FANOUT_BLOB_URL: 's3://b0b', FANOUT_S3_ENDPOINT: 'https://minio.internal:9000/', AWS_REGION: 'local' }, { region: 'local' }],
    [
      { FANOUT_BLOB_URL: 's3://b0b', AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'sekrit', AWS_SESSION_TOKEN: 'tok' },
      { credentials: { accessKeyId: 'AKID', secretAccessKey: 'sekrit', sessionToken: 'tok' } },
    ],
    [{ FANOUT_BLOB_URL: 's3://b0b', AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'sekrit' }, { credentials: { accessKeyId: 'AKID', secretAccessKey: 'sekrit', sessionToken: undefined } }],
  ])('%j', (env, want) => {
    expect(loadConfig({}, env).blobs).toMatchObject({ kind: 's3', ...want });
  });

  it.each<[Record<string, string>, RegExp]>([
    [{ FANOUT_BLOB_URL: '/var/blobs' }, /^FANOUT_BLOB_URL must be s3:\/\/BUCKET or s3:\/\/BUCKET\/PREFIX/],
    [{ FANOUT_BLOB_URL: 'file:///var/blobs' }, /^FANOUT_BLOB_URL must be s3:\/\/BUCKET/],
    [{ FANOUT_BLOB_URL: 's3://' }, /^FANOUT_BLOB_URL must be s3:\/\/BUCKET/],
    [{ FANOUT_BLOB_URL: 'gs://bucket' }, /^FANOUT_BLOB_URL must be s3:\/\/BUCKET/],
    [{ FANOUT_BLOB_URL: 's3://Upper_Case' }, /not a valid bucket name/],
    [{ FANOUT_BLOB_URL: 's3://ab' }, /not a valid bucket name/],
    [{ FANOUT_BLOB_URL: 's3://bucket/a//b' }, /prefix "a\/\/b" must be/],
    [{ FANOUT_BLOB_URL: 's3://bucket/../up' }, /prefix "..\/up" must be/],
    [{ FANOUT_BLOB_URL: 's3://bucket/a b' }, /prefix "a b" must be/],
    [{ FANOUT_BLOB_URL: 's3://bucket', FANOUT_S3_ENDPOINT: '127.0.0.1:8333' }, /^FANOUT_S3_ENDPOINT must be an http\(s\):\/\/HOST\[:PORT\] URL/],
    [{ FANOUT_BLOB_URL: 's3://bucket', FANOUT_S3_ENDPOINT: 'http://127.0.0.1:8333/bucket' }, /^FANOUT_S3_ENDPOINT must be/],
    [{ FANOUT_BLOB_URL: 's3://bucket', AWS_ACCESS_KEY_ID: 'AKID' }, /must be set together/],
    [{ FANOUT_BLOB_URL: 's3://bucket', AWS_SECRET_ACCESS_KEY: 'only-the-secret' }, /must be set together/],
  ])('%j is refused with one clear line', (env, message) => {
    let error: unknown;
    try {
      loadConfig({}, env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
    // a secret never ends up in an error message (they are printed)
    expect((error as Error).message).not.toContain('only-the-secret');
  });

  it('the AWS variables matter only with an S3 URL', () => {
    expect(loadConfig({}, { AWS_ACCESS_KEY_ID: 'AKID' }).blobs.kind).toBe('local');
  });
});
