import { describe, expect, it } from 'vitest';
import { useWorkerHarness } from './harness.js';
import { NonRetriableError, RetryAfterError, type FunctionTaskContext } from '../../src/worker/index.js';

const t = useWorkerHarness();

describe('function tasks', () => {
  it('maps returns and throws to outcomes the dispatcher can act on', async () => {
    const seen: Array<{ input: unknown; ctx: Omit<FunctionTaskContext, 'signal' | 'logger'> }> = [];
    await t.h.worker({
      tasks: [
        {
          kind: 'function',
          name: 'fn',
          fn: async (input, ctx) => {
            seen.push({ input, ctx: { batchId: ctx.batchId, index: ctx.index, attempt: ctx.attempt } });
            const { mode } = input as { mode: string };
            if (mode === 'ok') return { doubled: 42 };
            if (mode === 'nothing') return undefined;
            if (mode === 'fatal') throw new NonRetriableError('bad input: no url');
            if (mode === 'later') throw new RetryAfterError(1500, 'quota exhausted');
            if (mode === 'bigint') return { n: 1n };
            if (mode === 'sync') (null as unknown as { x: number }).x;
            throw new Error('plain failure', { cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });
          },
        },
      ],
    });
    const modes = ['ok', 'nothing', 'fatal', 'later', 'bigint', 'sync', 'plain'];
    const lease = await t.h.lease('fn', modes.map((mode) => ({ mode })), { batchId: 'b-fn', attempt: 2 });
    const items = await t.h.waitForItems(modes.length, lease.leaseId);
    const view = items.map(({ i, outcome, result, error, nonRetriable, retryAfterMs, exitCode }) => ({
      i, outcome, result, error, nonRetriable, retryAfterMs, exitCode,
    }));
    const blank = { result: undefined, error: undefined, nonRetriable: undefined, retryAfterMs: undefined, exitCode: undefined };
    expect(view[0]).toEqual({ ...blank, i: 0, outcome: 'succeeded', result: { doubled: 42 } });
    expect(view[1]).toEqual({ ...blank, i: 1, outcome: 'succeeded' });
    expect(view[2]).toEqual({ ...blank, i: 2, outcome: 'failed', nonRetriable: true, error: 'bad input: no url' });
    expect(view[3]).toEqual({ ...blank, i: 3, outcome: 'failed', retryAfterMs: 1500, error: 'quota exhausted' });
    expect(view[4]).toMatchObject({ outcome: 'failed', error: expect.stringContaining('not JSON-serializable') });
    expect(view[5]).toMatchObject({ outcome: 'failed', error: expect.stringContaining('Cannot read properties of null') });
    expect(view[6]).toMatchObject({ outcome: 'failed', error: 'plain failure: socket hang up (ECONNRESET)' });
    expect(seen.find((s) => s.ctx.index === 0)).toEqual({ input: { mode: 'ok' }, ctx: { batchId: 'b-fn', index: 0, attempt: 2 } });
  });

  it('times out a function and aborts its signal', async () => {
    let aborted = false;
    await t.h.worker({
      tasks: [
        {
          kind: 'function',
          name: 'hang',
          fn: (_input, ctx) =>
            new Promise((resolve) => {
              ctx.signal.addEventListener('abort', () => {
                aborted = true;
                setTimeout(() => resolve('too late'), 50);
              });
            }),
        },
      ],
    });
    const lease = await t.h.lease('hang', [1], { timeoutMs: 200 });
    const [item] = await t.h.waitForItems(1, lease.leaseId);
    expect(item).toMatchObject({ outcome: 'failed', condition: 'Timeout' });
    expect(item.result).toBeUndefined();
    expect(aborted).toBe(true);
  });
});
