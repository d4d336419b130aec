import { spawn } from 'node:child_process';
import { api, pollUntil, postBatch, type Api, type BatchView } from './lib.js';

/**
 * Benchmark E's two sides: a batch of string items run by a `fanout up` command task (`rev`, the
 * item on stdin), and the baseline, `xargs -P` running `sh -c 'echo ITEM | rev'` once per item
 * (the per-item spawn cost a shell script pays). Both check every output line.
 */

/** The E items: short distinct strings, safe as shell arguments. */
export function commandItems(n: number): string[] {
  const out: string[] = [];
  for (let k = 0; k < n; k++) out.push(`item-${String(k).padStart(7, '0')}`);
  return out;
}

const reversed = (s: string) => [...s].reverse().join('');

/** Runs the baseline; returns items/s from the spawn of xargs to its exit. */
export async function xargsBaseline(items: string[], parallelism: number): Promise<{ rate: number; seconds: number }> {
  // -d '\n': no quote processing of the input; -n1: one `sh -c` per item, its item as $1
  const args = ['-d', '\n', '-n', '1', '-P', String(parallelism), 'sh', '-c', 'echo "$1" | rev', 'sh'];
  const t0 = performance.now();
  const child = spawn('/usr/bin/xargs', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin.end(`${items.join('\n')}\n`);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`xargs exited ${code}: ${err.slice(0, 500)}`);
  const lines = new Set(out.split('\n').filter(Boolean));
  const missing = items.filter((i) => !lines.has(reversed(i)));
  if (missing.length > 0 || lines.size !== items.length) {
    throw new Error(`xargs baseline: ${lines.size} distinct lines for ${items.length} items, ${missing.length} missing`);
  }
  return { rate: items.length / seconds, seconds };
}

/**
 * Submits `items` to task `task` at `parallelism` and waits for the batch to succeed; returns items/s
 * from the 202 to the moment the batch reads Succeeded (polled every 100 ms), after checking every
 * result through `/results`.
 */
export async function fanoutCommandBatch(
  a: Api,
  task: string,
  items: string[],
  parallelism: number,
  timeoutMs: number,
): Promise<{ rate: number; seconds: number }> {
  const batch = await postBatch(a, { task, name: `bench-cmd-${parallelism}`, parallelism, items });
  const accepted = performance.now();
  let last: BatchView | undefined;
  const done = await pollUntil(`the ${task} batch to succeed`, 100, timeoutMs, async () => {
    last = await api<BatchView>(a, 'GET', `/v1/batches/${batch.id}`);
    const phase = last.status.phase;
    if (phase === 'Failed' || phase === 'Cancelled') throw new Error(`batch ended ${phase}: ${JSON.stringify(last.status)}`);
    return phase === 'Succeeded' ? performance.now() : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}; last counts ${JSON.stringify(last?.status.counts)}`);
  });
  await checkResults(a, batch.id, items);
  const seconds = (done - accepted) / 1000;
  return { rate: items.length / seconds, seconds };
}


async function checkResults(a: Api, batchId: string, items: string[]): Promise<void> {
  const res = await fetch(`${a.url}/v1/batches/${batchId}/results`, { headers: { authorization: `Bearer ${a.key}` } });
  if (!res.ok) throw new Error(`GET results: ${res.status}`);
  const lines = (await res.text()).split('\n').filter(Boolean);
  if (lines.length !== items.length) throw new Error(`${lines.length} result lines for ${items.length} items`);
  for (const line of lines) {
    const r = JSON.parse(line) as { index: number; status: string; result: unknown };
    if (r.status !== 'succeeded' || r.result !== reversed(items[r.index])) {
      throw new Error(`item ${r.index}: ${r.status} ${JSON.stringify(r.result)}, expected ${reversed(items[r.index])}`);
    }
  }
}
