/**
 * Blob keys: `<batchId>/<file>`. Both parts become a path segment (local directory) or part of
 * an object key (S3), so only plain names pass: no separators, no `..`, nothing hidden.
 */

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function isPlainSegment(value: string): boolean {
  return SEGMENT.test(value) && !value.includes('..');
}

export function assertPlainSegment(what: string, value: string): void {
  if (!isPlainSegment(value)) throw new Error(`blob ${what} ${JSON.stringify(value)} is not a plain name`);
}

/** Splits a key put() returned; throws for anything else (a key is never taken from a client). */
export function splitBlobKey(key: string): { batchId: string; file: string } {
  const parts = key.split(/[\\/]/);
  if (parts.length !== 2) throw new Error(`blob key ${JSON.stringify(key)} is not <batch>/<file>`);
  const [batchId, file] = parts as [string, string];
  assertPlainSegment('batch', batchId);
  assertPlainSegment('file', file);
  return { batchId, file };
}

/** The published file name of one upload: `<name>.<unique>.txt`; its partial twin ends `.part`. */
export function publishedName(name: string, unique: string): string {
  return `${name}.${unique}.txt`;
}

export const PARTIAL_SUFFIX = '.part';

export function partialName(name: string, unique: string): string {
  return `${name}.${unique}${PARTIAL_SUFFIX}`;
}

export function isPartialName(file: string): boolean {
  return file.endsWith(PARTIAL_SUFFIX) && isPlainSegment(file);
}
