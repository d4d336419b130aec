import { constants, PerformanceObserver } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { collectorFunction, UploadGarbage } from '../../src/api/upload-garbage.js';

describe('UploadGarbage: a full collection per so many stored upload bytes', () => {
  it('asks for one collection each time the stored bytes reach the threshold', () => {
    let collections = 0;
    const garbage = new UploadGarbage(1000, () => collections++);
    garbage.stored(600);
    expect(collections).toBe(0);
    garbage.stored(600);
    expect(collections).toBe(1);
    garbage.stored(999);
    expect(collections).toBe(1);
    garbage.stored(1);
    expect(collections).toBe(2);
  });

  it('the collector made available at run time runs a full (mark-compact) collection', async () => {
    const collect = collectorFunction();
    expect(collect).toBeTypeOf('function');
    const majorCollections: number[] = [];
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorCollections.push(entry.startTime);
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    try {
      void collect!({ type: 'major', execution: 'async' });
      // Run as a task: wait for the observer to report it (vitest's test timeout bounds the wait).
      while (majorCollections.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      observer.disconnect();
    }
    expect(majorCollections.length).toBeGreaterThan(0);
  });
});
