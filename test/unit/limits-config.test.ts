import { describe, expect, it } from 'vitest';
import { ConfigError, JSON_DEPTH_CEILING, loadConfig } from '../../src/config/config.js';

describe('FANOUT_MAX_JSON_DEPTH', () => {
  const load = (value?: string) => loadConfig({ dataDir: '/tmp/fanout-config-test' }, value === undefined ? {} : { FANOUT_MAX_JSON_DEPTH: value });

  it.each([
    [undefined, 64],
    ['1', 1],
    ['200', 200],
    [String(JSON_DEPTH_CEILING), JSON_DEPTH_CEILING],
  ])('%s → %i', (value, depth) => {
    expect(load(value).limits.maxJsonDepth).toBe(depth);
  });

  it.each(['0', '-3', '2.5', 'deep', String(JSON_DEPTH_CEILING + 1), '100000'])('%s is refused with the variable named', (value) => {
    expect(() => load(value)).toThrow(ConfigError);
    expect(() => load(value)).toThrow(/FANOUT_MAX_JSON_DEPTH/);
  });
});
