import { describe, expect, it } from 'vitest';
import { isPartialName, isPlainSegment, partialName, publishedName, splitBlobKey } from '../../src/domain/blob-keys.js';

describe('blob key segments', () => {
  it.each([
    ['b0mx7mq2kb000da255e2', true],
    ['0.1', true],
    ['12.3.4f9a0c.txt', true],
    ['', false],
    ['.hidden', false],
    ['..', false],
    ['a..b', false],
    ['a/b', false],
    ['a\\b', false],
    ['a b', false],
    ['x'.repeat(200), true],
    ['x'.repeat(201), false],
  ])('%j plain: %s', (value, plain) => {
    expect(isPlainSegment(value)).toBe(plain);
  });
});

describe('blob keys', () => {
  it.each([
    ['b1/0.1.ab.txt', { batchId: 'b1', file: '0.1.ab.txt' }],
    // keys written before unique names (path.join of batch and `<index>.<attempt>.txt`)
    ['b1/3.2.txt', { batchId: 'b1', file: '3.2.txt' }],
  ])('%s splits into batch and file', (key, parts) => {
    expect(splitBlobKey(key)).toEqual(parts);
  });

  it.each(['b1', 'b1/x/y.txt', '../b1/0.txt', 'b1/..', '/etc/passwd', 'b1/.0.txt', 'b1\\..\\x'])('%s is refused', (key) => {
    expect(() => splitBlobKey(key)).toThrow(/blob/);
  });

  it('published and partial names of one upload differ only in the suffix', () => {
    expect(publishedName('4.2', 'abc')).toBe('4.2.abc.txt');
    expect(partialName('4.2', 'abc')).toBe('4.2.abc.part');
    expect(isPartialName(partialName('4.2', 'abc'))).toBe(true);
    expect(isPartialName(publishedName('4.2', 'abc'))).toBe(false);
    expect(isPartialName('.part')).toBe(false);
  });
});
