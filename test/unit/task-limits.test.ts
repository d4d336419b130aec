import { describe, expect, it } from 'vitest';
import { parseTaskLimit, TaskLimitError } from '../../src/domain/task-limits.js';
import { parseTaskLimits, ConfigError } from '../../src/config/config.js';
import { batchHeaderSchema, runtimeProblems } from '../../src/domain/batch-spec.js';

describe('--task-limit', () => {
  it.each([
    ['api:maxPerSecond=10', { task: 'api', limits: { maxPerSecond: 10 } }],
    ['api:maxPerSecond=0.5,maxConcurrent=4', { task: 'api', limits: { maxPerSecond: 0.5, maxConcurrent: 4 } }],
    ['api: maxConcurrent = 2 , adaptive=false', { task: 'api', limits: { maxConcurrent: 2, adaptive: false } }],
  ])('%s', (flag, expected) => {
    expect(parseTaskLimit(flag)).toEqual(expected);
  });

  it.each([
    ['api', /expected NAME:KEY=VALUE/],
    [':maxPerSecond=1', /expected NAME:KEY=VALUE/],
    ['api:', /no KEY=VALUE/],
    ['api:maxPerSecond=0', /maxPerSecond must be a number above 0/],
    ['api:maxPerSecond=abc', /maxPerSecond must be/],
    ['api:maxPerSecond=1e9', /maxPerSecond must be/],
    ['api:maxConcurrent=1.5', /maxConcurrent must be a whole number/],
    ['api:maxConcurrent=0', /maxConcurrent must be a whole number/],
    ['api:adaptive=yes', /adaptive must be true or false/],
    ['api:burst=3', /unknown key "burst"/],
    ['api:maxConcurrent=1,maxConcurrent=2', /given twice/],
  ])('%s is refused', (flag, message) => {
    expect(() => parseTaskLimit(flag)).toThrow(TaskLimitError);
    expect(() => parseTaskLimit(flag)).toThrow(message);
  });

  it('FANOUT_TASK_LIMITS and flags: a flag replaces the environment\'s limits of its task; errors name their source', () => {
    expect(parseTaskLimits('a:maxConcurrent=1; b:maxPerSecond=2', ['a:maxPerSecond=3'])).toEqual({ a: { maxPerSecond: 3 }, b: { maxPerSecond: 2 } });
    expect(() => parseTaskLimits('a:maxConcurrent=x', [])).toThrow(ConfigError);
    expect(() => parseTaskLimits('a:maxConcurrent=x', [])).toThrow(/^FANOUT_TASK_LIMITS: /);
    expect(() => parseTaskLimits(undefined, ['a'])).toThrow(/^--task-limit: /);
  });
});

describe('concurrency keys in a batch spec', () => {
  const header = (fields: Record<string, unknown>) => batchHeaderSchema.parse({ task: 't', ...fields });
  it.each([
    [{ concurrencyKey: '{{c}}', maxConcurrentPerKey: 2 }, []],
    [{}, []],
    [{ concurrencyKey: '{{c}}' }, ['maxConcurrentPerKey']],
    [{ maxConcurrentPerKey: 2 }, ['concurrencyKey']],
    [{ concurrencyKey: '{{c}}', maxConcurrentPerKey: 2, runtime: 'job-per-item', task: undefined, template: { image: 'x' } }, ['concurrencyKey']],
  ])('%j', (fields, paths) => {
    expect(runtimeProblems(header(fields)).map((p) => p.path.join('/'))).toEqual(paths);
  });
});
