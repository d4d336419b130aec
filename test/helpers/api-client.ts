import { setTimeout as sleep } from 'node:timers/promises';

/** A minimal HTTP client for tests: real fetch against the real server. */
export class ApiClient {
  constructor(
    readonly url: string,
    readonly apiKey: string,
  ) {}

  async request(method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const init: RequestInit & { duplex?: string } = { method, headers: { authorization: `Bearer ${this.apiKey}`, ...headers } };
    if (body !== undefined) {
      if (typeof body === 'string' || body instanceof ReadableStream || body instanceof Uint8Array) {
        init.body = body as BodyInit;
        if (body instanceof ReadableStream) init.duplex = 'half';
      } else {
        init.body = JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] = 'application/json';
      }
    }
    return fetch(this.url + p, init);
  }

  async json<T = any>(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T; headers: Headers }> {
    const res = await this.request(method, p, body, headers);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  }

  async createBatch(spec: Record<string, unknown>): Promise<any> {
    const r = await this.json('POST', '/v1/batches', spec);
    if (r.status !== 202) throw new Error(`create failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async getBatch(id: string): Promise<any> {
    return (await this.json('GET', `/v1/batches/${id}`)).body;
  }

  /** Polls until the batch reaches one of `phases` (default: any final phase). */
  async waitForPhase(id: string, phases = ['Succeeded', 'Failed', 'Cancelled'], timeoutMs = 30_000): Promise<any> {
    const until = Date.now() + timeoutMs;
    let last: any;
    while (Date.now() < until) {
      last = await this.getBatch(id);
      if (phases.includes(last.status.phase)) return last;
      await sleep(100);
    }
    throw new Error(`batch ${id} did not reach ${phases.join('|')} in ${timeoutMs} ms; last status ${JSON.stringify(last?.status)}`);
  }

  /** Downloads results and parses every NDJSON line. */
  async results(id: string): Promise<any[]> {
    const res = await this.request('GET', `/v1/batches/${id}/results`);
    if (res.status !== 200) throw new Error(`results: ${res.status} ${await res.text()}`);
    return (await res.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  }
}
