import { describe, expect, it } from 'vitest';
import { newBatchId } from '../../src/store/batch-create.js';

describe('newBatchId', () => {
  it('sorts by creation order, also within one millisecond', () => {
    const ids = [newBatchId(5_000), newBatchId(5_000), newBatchId(5_000), newBatchId(5_001), newBatchId(5_001)];
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('is 20 characters a Kubernetes label value and a BullMQ job id accept', () => {
    const id = newBatchId();
    expect(id).toMatch(/^b[0-9a-z]{19}$/);
  });
});
