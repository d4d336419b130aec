import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { findFreePort as freePort } from '../src/main/local-redis.js';

/**
 * Helpers for bench/run.ts: child processes (redis-server, `fanout up`, worker scripts) that are
 * always cleaned up, the item payload, NDJSON bodies and bounded polling.
 */

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ITEM_BYTES = 100;

// ---------------------------------------------------------------------------------------------
// child processes

const children = new Set<ChildProcess>();

/** Kills every child still running (SIGKILL): the last resort on exit or on a fatal error. */
export function killAllChildren(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  output(): string;
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after `graceMs` */
  stop(graceMs?: number): Promise<void>;
}

export function startChild(cmd: string, args: string[], env: Record<string, string>, label: string): Child {
  const proc = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
    for (const l of listeners) l();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.once('exit', () => {
    children.delete(proc);
    for (const l of listeners) l();
  });
  return {
    proc,
    pid: proc.pid!,
    output: () => out,
    waitFor(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(re);
          if (m) {
            done();
            resolve(m);
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            done();
            reject(new Error(`${label} exited (${proc.exitCode ?? proc.signalCode}) before printing ${re}:\n${out.slice(-2000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${label}: timed out after ${timeoutMs} ms waiting for ${re}:\n${out.slice(-2000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
      if (killed) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
}


/** Debian's redis-server on a free port, persistence off. */
export async function startRedis(dir: string): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  const child = startChild(
    '/usr/bin/redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
    {},
    'redis-server',
  );
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch (err) {
      if (Date.now() > until) throw new Error(`redis-server did not answer: ${(err as Error).message}\n${child.output()}`);
      probe.disconnect();
      await sleep(50);
    }
  }
  probe.disconnect();
  return { child, url };
}

/**
 * `node [nodeArgs] bin/fanout.js up --port 0 [upArgs]` (`upArgs` defaults to `--task other=true`);
 * resolves once it listens.
 */
export async function startFanout(
  env: Record<string, string>,
  nodeArgs: string[] = [],
  upArgs: string[] = ['--task', 'other=true'],
): Promise<{ child: Child; url: string }> {
  const child = startChild(process.execPath, [...nodeArgs, 'bin/fanout.js', 'up', '--port', '0', ...upArgs], { LOG_LEVEL: 'warn', ...env }, 'fanout up');
  const m = await child.waitFor(/listening on (http:\/\/\S+)/, 60_000);
  return { child, url: m[1] };
}

/** Starts `node --import tsx <script>` and waits for it to print `ready`. */
export async function startScript(script: string, env: Record<string, string>): Promise<Child> {
  // BENCH_SCRIPT_NODE_ARGS: node flags for these processes (workers, baselines), e.g. "--cpu-prof --cpu-prof-dir=DIR"
  const nodeArgs = (process.env.BENCH_SCRIPT_NODE_ARGS || '').split(/\s+/).filter(Boolean);
  const child = startChild(process.execPath, [...nodeArgs, '--import', 'tsx', path.join(REPO, script)], env, script);
  await child.waitFor(/^ready$/m, 60_000);
  return child;
}

/** The server's peak resident set (VmHWM) in bytes, after checking `pid` runs `fanout up`. */
export function peakRss(pid: number): number {
  const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (!/node/.test(path.basename(cmdline[0] ?? '')) || !cmdline.some((a) => a.endsWith('bin/fanout.js')) || !cmdline.includes('up')) {
    throw new Error(`pid ${pid} is not the fanout server: ${cmdline.join(' ')}`);
  }
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = status.match(/^VmHWM:\s+(\d+) kB$/m);
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  // utime is field 14, stime field 15
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU seconds used so far by `pid`, its waited-for children that ended (cutime + cstime) and its
 * live direct children: for the PostgreSQL postmaster, the whole cluster (every backend is a
 * direct child; one that exits moves its time into the postmaster's cutime/cstime, so the sum
 * stays monotonic and a delta covers backends that came and went in between).
 */
export function processTreeCpuSeconds(pid: number): number {
  const fields = statFields(pid);
  // fields[13], fields[14]: cutime, cstime (fields 16 and 17)
  let ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  for (const child of children) {
    try {
      const f = statFields(Number(child));
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // exited between the two reads: its time is in the parent's cutime at the next read
    }
  }
  return ticks / 100;
}

/** /proc/<pid>/stat after the command name: fields[0] is field 3 (state). */
function statFields(pid: number): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

// ---------------------------------------------------------------------------------------------
// payload

const PAD = 'x'.repeat(ITEM_BYTES);
const padLen = (() => {
  const base = JSON.stringify({ customId: 'item-0000000', url: 'https://example.com/resources/0000000', size: 1000000, pad: '' });
  const n = ITEM_BYTES - base.length;
  if (n < 0) throw new Error('item template longer than ITEM_BYTES');
  return n;
})();

/** Item `k` as JSON text of exactly {@link ITEM_BYTES} bytes (k < 10,000,000). */
export function itemJson(k: number): string {
  const id = String(k).padStart(7, '0');
  return `{"customId":"item-${id}","url":"https://example.com/resources/${id}","size":${1000000 + (k % 8999999)},"pad":"${PAD.slice(0, padLen)}"}`;
}

/**
 * An NDJSON body: the spec line, then `n` items, generated 1,000 lines per chunk as the request
 * pulls them (never held whole). `onStart` runs when the first chunk is pulled.
 */
export function ndjsonBody(spec: object, n: number, onStart: () => void): ReadableStream<Uint8Array> {
  let k = 0;
  let started = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!started) {
        started = true;
        onStart();
        controller.enqueue(Buffer.from(`${JSON.stringify(spec)}\n`));
        return;
      }
      if (k >= n) {
        controller.close();
        return;
      }
      const end = Math.min(n, k + 1000);
      let s = '';
      for (; k < end; k++) s += `${itemJson(k)}\n`;
      controller.enqueue(Buffer.from(s));
    },
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP + polling

export interface Api {
  url: string;
  key: string;
}

export async function api<T>(a: Api, method: string, p: string): Promise<T> {
  const res = await fetch(`${a.url}${p}`, { method, headers: { authorization: `Bearer ${a.key}` } });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

export interface BatchView {
  id: string;
  status: { phase: string; counts: { total: number; pending: number; running: number; succeeded: number; failed: number; cancelled: number } };
}

/** POST /v1/batches with a JSON spec; the created batch (202), or an error with the answer. */
export async function postBatch(a: Api, spec: object): Promise<BatchView> {
  const res = await fetch(`${a.url}/v1/batches`, {
    method: 'POST',
    headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' },
    body: JSON.stringify(spec),
  });
  const text = await res.text();
  if (res.status !== 202) throw new Error(`POST /v1/batches: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as BatchView;
}


/** POSTs an NDJSON batch; returns the batch and the ms from the first body byte to the 202. */
export async function submitNdjson(a: Api, spec: object, n: number): Promise<{ batch: BatchView; ms: number; acceptedAt: number }> {
  let t0 = 0;
  const body = ndjsonBody(spec, n, () => (t0 = performance.now()));
  const res = await fetch(`${a.url}/v1/batches`, {
    method: 'POST',
    headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/x-ndjson' },
    body,
    duplex: 'half',
  } as RequestInit);
  const acceptedAt = performance.now();
  const text = await res.text();
  if (res.status !== 202) throw new Error(`POST /v1/batches (ndjson): ${res.status} ${text.slice(0, 500)}`);
  return { batch: JSON.parse(text) as BatchView, ms: acceptedAt - t0, acceptedAt };
}

/** Calls `check` every `everyMs` until it returns a value, at most `timeoutMs`. */
export async function pollUntil<T>(what: string, everyMs: number, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  const m = info.match(/^used_memory:(\d+)/m);
  if (!m) throw new Error('no used_memory in INFO memory');
  return Number(m[1]);
}
