import { spawn } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { workQueueName } from '../../src/runtimes/queue/protocol.js';
import { commandEnv, stdinPayload } from '../../src/worker/command-task.js';
import { describeError } from '../../src/worker/errors.js';
import { AttemptAbort } from '../../src/worker/item-abort.js';
import { ResultSpool, TailBuffer, stripOneNewline } from '../../src/worker/output-capture.js';
import { resultUrl } from '../../src/worker/result-upload.js';
import { Semaphore } from '../../src/worker/semaphore.js';
import type { TaskContext } from '../../src/worker/tasks.js';
import { isJsonContentType, parseRetryAfter } from '../../src/worker/url-task.js';
import { TaskFlagError, parseTaskFlag } from '../../src/worker/index.js';
import { silentLogger, sleep } from './harness.js';

describe('parseTaskFlag', () => {
  const cases: Array<{ name: string; flag: string; want: unknown }> = [
    { name: 'command', flag: 'rev=rev', want: { kind: 'command', name: 'rev', command: 'rev' } },
    { name: 'command keeps = and spaces', flag: 'x=sh -c "a=b" ', want: { kind: 'command', name: 'x', command: 'sh -c "a=b" ' } },
    { name: 'http URL', flag: 'enrich=http://fn.internal/enrich', want: { kind: 'url', name: 'enrich', url: 'http://fn.internal/enrich' } },
    { name: 'https URL', flag: 'e.v2=HTTPS://fn/x?y=1', want: { kind: 'url', name: 'e.v2', url: 'HTTPS://fn/x?y=1' } },
    { name: 'not a URL scheme', flag: 'f=ftp://x', want: { kind: 'command', name: 'f', command: 'ftp://x' } },
  ];
  it.each(cases)('$name', ({ flag, want }) => {
    expect(parseTaskFlag(flag)).toEqual(want);
  });

  const bad: Array<{ name: string; flag: string; message: RegExp }> = [
    { name: 'no =', flag: 'rev', message: /expected NAME=COMMAND or NAME=URL/ },
    { name: 'empty name', flag: '=rev', message: /invalid task name/ },
    { name: 'colon in name', flag: 'a:b=rev', message: /invalid task name/ },
    { name: 'empty spec', flag: 'rev=  ', message: /is empty/ },
    { name: 'broken URL', flag: 'u=http://', message: /not a valid URL/ },
  ];
  it.each(bad)('rejects $name', ({ flag, message }) => {
    expect(() => parseTaskFlag(flag)).toThrow(TaskFlagError);
    expect(() => parseTaskFlag(flag)).toThrow(message);
  });

  it('gives each task its own work queue', () => {
    expect(workQueueName('rev')).toBe('fanout-work.rev');
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  const cases: Array<[string | null, number | undefined]> = [
    ['120', 120_000],
    [' 0 ', 0],
    ['1.5', 1500],
    ['Wed, 01 Jan 2025 00:00:30 GMT', 30_000],
    ['Tue, 31 Dec 2024 23:59:00 GMT', 0],
    ['soon', undefined],
    ['-5', undefined],
    ['', undefined],
    [null, undefined],
  ];
  it.each(cases)('%j -> %j', (value, want) => {
    expect(parseRetryAfter(value, now)).toBe(want);
  });
});

describe('isJsonContentType', () => {
  it.each([
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['application/problem+json', true],
    ['Application/JSON', true],
    ['application/jsonl', false],
    ['text/plain', false],
    [null, false],
  ] as const)('%s -> %s', (value, want) => {
    expect(isJsonContentType(value)).toBe(want);
  });
});

describe('output capture', () => {
  it('keeps a small result in memory', async () => {
    const spool = new ResultSpool(1024);
    spool.end(Buffer.from('hello\n'));
    await new Promise((resolve) => spool.on('finish', resolve));
    const captured = spool.captured();
    expect(captured.kind).toBe('inline');
    expect(captured.kind === 'inline' && stripOneNewline(captured.data.toString())).toBe('hello');
  });

  it('never holds more than the limit of a 20 MB output', async () => {
    const spool = new ResultSpool(256 * 1024);
    const proc = spawn('/bin/sh', ['-c', "head -c 20000000 /dev/zero | tr '\\0' b"]);
    await pipeline(proc.stdout, spool);
    const captured = spool.captured();
    expect(captured).toMatchObject({ kind: 'file', bytes: 20_000_000 });
    expect(spool.peakBufferedBytes).toBeLessThanOrEqual(256 * 1024 + 65536);
    await spool.cleanup();
    await spool.cleanup();
  });

  it('removes exactly one trailing newline', () => {
    expect(stripOneNewline('a\n\n')).toBe('a\n');
    expect(stripOneNewline('a')).toBe('a');
    expect(stripOneNewline('')).toBe('');
  });

  it('keeps the stderr tail, cut on a character boundary', () => {
    const tail = new TailBuffer(8);
    tail.push(Buffer.from('0123456789'));
    tail.push(Buffer.from('é€\n'));
    // the last 8 bytes are 789 é € \n minus the cut continuation bytes
    expect(tail.text()).toBe('89é€');
    const small = new TailBuffer();
    small.push(Buffer.from('oops\n'));
    expect(small.text()).toBe('oops');
  });
});

describe('command environment and stdin', () => {
  const ctx = {
    batchId: 'b1', index: 7, attempt: 3, input: null, env: { FANOUT_ATTEMPT: '99', URL: 'u' },
    token: 't', inlineResultLimit: 1, logger: silentLogger, abort: new AttemptAbort(),
  } as TaskContext;
  it('puts FANOUT_* last so the item env cannot override them', () => {
    expect(commandEnv(ctx)).toMatchObject({
      FANOUT_BATCH_ID: 'b1', FANOUT_ITEM_INDEX: '7', JOB_COMPLETION_INDEX: '7', FANOUT_ATTEMPT: '3', URL: 'u',
    });
  });
  it.each([
    ['raw', 'raw'],
    [{ a: 1 }, '{"a":1}'],
    [[1, 'x'], '[1,"x"]'],
    [3, '3'],
    [null, 'null'],
    [undefined, 'null'],
  ] as const)('stdin for %j is %j', (input, want) => {
    expect(stdinPayload(input)).toBe(want);
  });
});

describe('Semaphore', () => {
  it('admits at most size holders, first come first served', async () => {
    const semaphore = new Semaphore(2);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, k) =>
        semaphore.run(async () => {
          order.push(k);
          running++;
          peak = Math.max(peak, running);
          await sleep(5);
          running--;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(semaphore.inUse).toBe(0);
  });
  it('serves waiting keys in turn: a batch whose items queued later is not served after all of an earlier one', async () => {
    const semaphore = new Semaphore(1);
    const order: string[] = [];
    const hold = await semaphore.acquire('a');
    const waiting = [
      ...['a1', 'a2', 'a3', 'a4'].map((name) => semaphore.run(async () => void order.push(name), 'a')),
      ...['b1', 'b2'].map((name) => semaphore.run(async () => void order.push(name), 'b')),
      semaphore.run(async () => void order.push('c1'), 'c'),
    ];
    hold();
    await Promise.all(waiting);
    expect(order).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4']);
    expect(semaphore.inUse).toBe(0);
  });
  it('ignores a double release', async () => {
    const semaphore = new Semaphore(1);
    const release = await semaphore.acquire();
    release();
    release();
    expect(semaphore.inUse).toBe(0);
  });
  it('rejects a size below 1', () => {
    expect(() => new Semaphore(0)).toThrow(RangeError);
  });
});

describe('small helpers', () => {
  it('builds the result URL under any base path', () => {
    expect(resultUrl('http://api:8080', 'b 1', 3).href).toBe('http://api:8080/v1/batches/b%201/items/3/result');
    expect(resultUrl('http://gw/fanout/', 'b', 0).href).toBe('http://gw/fanout/v1/batches/b/items/0/result');
  });
  it('describes errors with their cause and code', () => {
    expect(describeError('plain')).toBe('plain');
    expect(describeError(new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) })))
      .toBe('fetch failed: connect ECONNREFUSED 127.0.0.1:1');
    expect(describeError({ x: 1 })).toBe('non-error thrown: {"x":1}');
  });
});
