import { describe, expect, it } from 'vitest';
import type { BatchHeader } from '../../src/domain/batch-spec.js';
import { runtimesOf } from '../../src/runtimes/runtime.js';

/** Which runtimes the dispatcher hands an active batch to, and in which order. */
describe('runtimesOf', () => {
  const header = (h: Partial<BatchHeader>) => ({ runtime: 'queue', ...h }) as BatchHeader;
  it.each([
    { name: 'a queue batch: leases only', h: header({ task: 'rev' }), want: ['queue'] },
    { name: 'queue with its own workers as a Job: the Job first, then leases', h: header({ task: 'rev', workers: { kubernetes: {} } as BatchHeader['workers'] }), want: ['kubernetes', 'queue'] },
    { name: 'indexed-job: Kubernetes only', h: header({ runtime: 'indexed-job' }), want: ['kubernetes'] },
    { name: 'job-per-item: Kubernetes only', h: header({ runtime: 'job-per-item' }), want: ['kubernetes'] },
  ])('$name', (c) => {
    expect(runtimesOf(c.h)).toEqual(c.want);
  });
});
