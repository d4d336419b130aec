import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { tailFile, type ManagedProcess } from './processes.js';

export interface ProbeOptions {
  /** PEM of the CA that signed the server's cert; without it (https) the cert is not checked */
  ca?: string;
  token?: string;
}

/** One GET; answers the status and body, or undefined when the connection failed. */
export function probe(url: string, opts: ProbeOptions = {}): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const https = url.startsWith('https:');
    const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
    const req = (https ? httpsRequest : httpRequest)(
      url,
      https ? { headers, ca: opts.ca, rejectUnauthorized: opts.ca !== undefined, timeout: 5000 } : { headers, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/**
 * Polls `url` until it answers 200 (and `accept(body)` when given). Fails early when the
 * process exits, and on timeout; both errors carry the last answer and the tail of its log.
 */
export async function waitHealthy(
  proc: ManagedProcess,
  url: string,
  opts: ProbeOptions & { timeoutMs: number; accept?: (body: string) => boolean; verboseUrl?: string },
): Promise<number> {
  const started = Date.now();
  let last = 'no answer';
  for (;;) {
    const exitInfo = proc.exitInfo();
    if (exitInfo) throw new Error(`${proc.name} ${exitInfo} before ${url} was healthy; tail of ${proc.logFile}:\n${tailFile(proc.logFile)}`);
    const res = await probe(url, opts);
    if (res) {
      if (res.status === 200 && (!opts.accept || opts.accept(res.body))) return Date.now() - started;
      last = `HTTP ${res.status}: ${res.body.slice(0, 500)}`;
    }
    if (Date.now() - started > opts.timeoutMs) {
      const verbose = opts.verboseUrl ? await probe(opts.verboseUrl, opts) : undefined;
      const failing = verbose?.body
        .split('\n')
        .filter((line) => line.includes('failed'))
        .join('\n');
      throw new Error(
        `${proc.name} not healthy at ${url} within ${opts.timeoutMs} ms (last: ${last})${failing ? `\nfailing checks:\n${failing}` : ''}\ntail of ${proc.logFile}:\n${tailFile(proc.logFile)}`,
      );
    }
    await sleep(200);
  }
}
