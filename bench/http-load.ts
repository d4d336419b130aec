import http from 'node:http';

/**
 * The load generator of bench D, run in a process of its own so that its CPU is not the server's:
 *
 *   node --import tsx bench/http-load.ts '<json LoadSpec>'
 *
 * `concurrency` clients, each sending its next request as soon as the previous answer was read
 * whole, over keep-alive connections (node:http, one socket per client), for `seconds`. With
 * `pauseMs` each client waits that long between requests (a prober, not a load). Paths are taken
 * in turn from `paths`. Prints one JSON line (a {@link LoadResult}) and exits.
 */

export interface LoadSpec {
  /** http://127.0.0.1:PORT */
  origin: string;
  method?: 'GET' | 'POST';
  /** the paths requested, in turn */
  paths: string[];
  headers?: Record<string, string>;
  /** a request body sent with every request */
  body?: string;
  concurrency: number;
  seconds: number;
  pauseMs?: number;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  /** requests answered per second */
  rate: number;
  /** latency percentiles, ms */
  p50: number;
  p99: number;
  max: number;
  /** answers by status code */
  statuses: Record<string, number>;
  /** requests that got no answer (connection errors) */
  errors: number;
  /** the first answer with an unexpected status, for the log */
  firstUnexpected?: string;
}

async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const origin = new URL(spec.origin);
  if (origin.hostname !== '127.0.0.1' && origin.hostname !== '[::1]') throw new Error(`load only against 127.0.0.1 or [::1], not ${origin.hostname}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const body = spec.body === undefined ? undefined : Buffer.from(spec.body);
  const headers = { ...spec.headers, ...(body ? { 'content-length': String(body.length) } : {}) };
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  let firstUnexpected: string | undefined;
  let next = 0;
  const start = performance.now();
  const end = start + spec.seconds * 1000;

  const once = (path: string) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = http.request(
        { host: origin.hostname, port: origin.port, method: spec.method ?? 'GET', path, headers, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => {
            latencies.push(performance.now() - t0);
            const status = String(res.statusCode);
            statuses[status] = (statuses[status] ?? 0) + 1;
            if (firstUnexpected === undefined && !(res.statusCode! >= 200 && res.statusCode! < 300) && res.statusCode !== 404) {
              firstUnexpected = `${status} ${Buffer.concat(chunks).toString().slice(0, 300)}`;
            }
            resolve();
          });
          res.on('error', () => {
            errors++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(body);
    });

  const client = async () => {
    while (performance.now() < end) {
      await once(spec.paths[next++ % spec.paths.length]);
      if (spec.pauseMs) await new Promise((r) => setTimeout(r, spec.pauseMs));
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, client));
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : NaN);
  return { requests: latencies.length, seconds, rate: latencies.length / seconds, p50: at(0.5), p99: at(0.99), max: latencies[latencies.length - 1] ?? NaN, statuses, errors, firstUnexpected };
}

const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
process.stdout.write(`${JSON.stringify(await runLoad(spec))}\n`);
