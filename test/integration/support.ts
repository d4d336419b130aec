import { setTimeout as sleep } from 'node:timers/promises';
import { all } from '../../src/store/op.js';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import type { ApiClient } from '../helpers/api-client.js';
import type { TestService } from '../helpers/service.js';

/** Shared assertions and small utilities for the API integration tests (not a test file). */

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { pointer: string; detail: string; line?: number }[];
}

/**
 * Reads a response and checks it is an RFC 9457 problem with `status`; when `pointer` is given,
 * some field error must name it. Returns the parsed body for further checks.
 */
export async function expectProblem(res: Response, status: number, pointer?: string): Promise<ProblemBody> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.headers.get('x-request-id')).toBeTruthy();
  const body = JSON.parse(text) as ProblemBody;
  expect(typeof body.type).toBe('string');
  expect(typeof body.title).toBe('string');
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.status).toBe(status);
  expect(typeof body.detail).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
  if (pointer !== undefined) {
    expect(Array.isArray(body.errors), text).toBe(true);
    for (const e of body.errors!) {
      expect(typeof e.pointer).toBe('string');
      expect(typeof e.detail).toBe('string');
    }
    expect(body.errors!.map((e) => e.pointer), text).toContain(pointer);
  }
  return body;
}

/** Every batch id the client can see, following cursors (newest first). */
export async function allBatchIds(client: ApiClient, query = ''): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const qs = new URLSearchParams(query);
    qs.set('limit', '500');
    if (cursor) qs.set('cursor', cursor);
    const r = await client.json('GET', `/v1/batches?${qs}`);
    expect(r.status).toBe(200);
    ids.push(...r.body.items.map((b: { id: string }) => b.id));
    cursor = r.body.nextCursor;
    if (!cursor) return ids;
  }
  throw new Error('too many pages');
}

/** Polls `probe` until it returns a truthy value; fails with the last value after `timeoutMs`. */
export async function waitUntil<T>(probe: () => Promise<T>, what: string, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < until) {
    last = await probe();
    if (last) return last;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
}

/** Rows of a query on the service's store, as a client of the store port (a read). */
export function queryDb<T = unknown>(svc: TestService, sql: string, ...params: unknown[]): Promise<T[]> {
  return svc.service.store.read(all<T>(sql, ...params));
}

/** An NDJSON body produced on the fly: `lines` is called for each line number from 0 until it returns undefined. */
export function ndjsonStream(lines: (n: number) => string | undefined, linesPerChunk = 1000): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let n = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      let chunk = '';
      for (let k = 0; k < linesPerChunk; k++) {
        const line = lines(n);
        if (line === undefined) break;
        chunk += line + '\n';
        n++;
      }
      if (chunk === '') controller.close();
      else controller.enqueue(enc.encode(chunk));
    },
  });
}

export const NDJSON = { 'content-type': 'application/x-ndjson' };

/**
 * Registers `name` in the service's task registry the way a worker's heartbeat does, without a
 * worker: batches naming it are accepted and their items wait, which lets a test act as the worker.
 */
export async function registerTaskWithoutWorker(svc: TestService, name: string): Promise<void> {
  const redis = new Redis(svc.redisUrl);
  try {
    await redis.hset(`${svc.prefix}:tasks`, name, JSON.stringify({ kind: 'command', lastSeen: Date.now() }));
  } finally {
    redis.disconnect();
  }
}
