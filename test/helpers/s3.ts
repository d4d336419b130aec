import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { HeadBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { findFreePort } from '../../src/main/local-redis.js';
import { runBuildScript } from './build-script.js';

/**
 * A real S3-compatible server for tests: SeaweedFS's `weed mini` (master, volume, filer and S3
 * gateway in one process), built from its Go module by test/s3/build.sh and cached in
 * ~/.cache/fanout-s3. Every port is explicit and bound to 127.0.0.1, telemetry is off (by
 * default it reports to an outside URL), one access key is configured and anonymous requests are
 * refused. Each call starts its own server in its own temp directory.
 */
export interface TestS3 {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** created at startup */
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** the temp directory: data, config and weed.log */
  dir: string;
  logFile: string;
  /** Settings for an S3Client of this server (path-style addressing, these credentials). */
  clientConfig(): S3ClientConfig;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

const BUILD_SCRIPT = fileURLToPath(new URL('../s3/build.sh', import.meta.url));
const READY_TIMEOUT_MS = 90_000;

/**
 * Runs test/s3/build.sh and answers the path of `weed`: well under a second when cached, 10-30
 * minutes cold (progress goes to stderr). A failure throws; the S3 tests fail rather than skip.
 */
export async function buildWeed(): Promise<string> {
  const weed = (await runBuildScript(BUILD_SCRIPT)).weed;
  if (!weed) throw new Error('test/s3/build.sh did not print weed=PATH');
  return weed;
}

/** `count` distinct free ports on 127.0.0.1. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await findFreePort());
  return [...ports];
}

/** The weed mini command line: every listener on 127.0.0.1 at a given port, nothing else. */
function miniArgs(dir: string, ports: number[], configFile: string, bucket: string): string[] {
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc, admin, adminGrpc] = ports;
  return [
    '-logtostderr',
    `-logdir=${dir}`,
    `-config_dir=${dir}`,
    'mini',
    `-dir=${path.join(dir, 'data')}`,
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    // Required: telemetry reports to an outside URL by default. The URL is pointed at loopback too.
    '-master.telemetry=false',
    '-master.telemetry.url=http://127.0.0.1:9/',
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-filer.localSocket=${path.join(dir, 'filer.sock')}`,
    `-s3.port=${s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    `-s3.localSocket=${path.join(dir, 's3.sock')}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    `-s3.config=${configFile}`,
    `-bucket=${bucket}`,
    '-webdav=false',
    '-admin.ui=false',
    `-admin.port=${admin}`,
    `-admin.port.grpc=${adminGrpc}`,
    '-admin.port.legacy=0',
  ];
}

/** Starts `weed mini` with one bucket and waits until S3 answers for it with these credentials. */
export async function startTestS3(opts: { bucket?: string } = {}): Promise<TestS3> {
  const weed = await buildWeed();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-s3-'));
  const logFile = path.join(dir, 'weed.log');
  const bucket = opts.bucket ?? 'fanout-test';
  const accessKeyId = `FANOUTTEST${randomBytes(5).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(30).toString('base64url');
  const region = 'us-east-1';
  const configFile = path.join(dir, 's3.json');
  const identity = { name: 'fanout-test', credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }], actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'] };
  fs.writeFileSync(configFile, JSON.stringify({ identities: [identity] }), { mode: 0o600 });

  const ports = await freePorts(10);
  const endpoint = `http://127.0.0.1:${ports[6]}`;
  // weed also reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY as an admin identity: don't pass ours on.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  // weed puts its gRPC unix sockets in the temp dir: this one, so a killed server leaves nothing in /tmp.
  env.TMPDIR = dir;
  const log = fs.openSync(logFile, 'a');
  const child: ChildProcess = spawn(weed, miniArgs(dir, ports, configFile, bucket), { cwd: dir, env, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const cleanup = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // A test that dies without stop() must not leave a server behind.
  process.once('exit', cleanup);
  const clientConfig = (): S3ClientConfig => ({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });

  try {
    await waitUntilReady(child, clientConfig(), bucket, logFile);
  } catch (err) {
    const detail = `${(err as Error).message}\n--- ${logFile} ---\n${tail(logFile)}`;
    cleanup();
    process.removeListener('exit', cleanup);
    throw new Error(detail);
  }

  return {
    endpoint,
    bucket,
    accessKeyId,
    secretAccessKey,
    region,
    dir,
    logFile,
    clientConfig,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const stopped = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
        if (!stopped) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      cleanup();
      process.removeListener('exit', cleanup);
    },
  };
}

/** HeadBucket until it succeeds: S3 is up, the bucket exists and the credentials are accepted. */
async function waitUntilReady(child: ChildProcess, config: S3ClientConfig, bucket: string, logFile: string): Promise<void> {
  const client = new S3Client({ ...config, maxAttempts: 1 });
  const until = Date.now() + READY_TIMEOUT_MS;
  let last: unknown;
  try {
    while (Date.now() < until) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`weed mini exited (${child.exitCode ?? child.signalCode}) before S3 answered; log: ${logFile}`);
      }
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
        return;
      } catch (err) {
        last = err;
      }
      await sleep(250);
    }
  } finally {
    client.destroy();
  }
  throw new Error(`weed mini: S3 did not answer HeadBucket ${bucket} within ${READY_TIMEOUT_MS} ms (last error: ${String(last)})`);
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
