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

describe('settings that become timers', () => {
  const load = (env: Record<string, string>) => loadConfig({ dataDir: '/tmp/fanout-config-test' }, env);

  it.each([
    ['FANOUT_LEASE_SECONDS', '2147483', (c: ReturnType<typeof load>) => c.leaseMs, 2_147_483_000],
    ['FANOUT_RESYNC_SECONDS', '2147483', (c: ReturnType<typeof load>) => c.resyncMs, 2_147_483_000],
    ['FANOUT_EVENTS_POLL_MS', '2147483647', (c: ReturnType<typeof load>) => c.events.pollMs, 2_147_483_647],
    ['FANOUT_WEBHOOK_TIMEOUT_SECONDS', '60', (c: ReturnType<typeof load>) => c.webhooks.timeoutMs, 60_000],
  ])('%s=%s is accepted', (name, value, read, ms) => {
    expect(read(load({ [name]: value }))).toBe(ms);
  });

  it.each([
    ['FANOUT_LEASE_SECONDS', '2147484'],
    ['FANOUT_RESYNC_SECONDS', '99999999'],
    ['FANOUT_EVENTS_POLL_MS', '2147483648'],
    ['FANOUT_EVENTS_HEARTBEAT_MS', '3000000000'],
    ['FANOUT_WEBHOOK_TIMEOUT_SECONDS', '2147484'],
  ])('%s=%s (past what setTimeout holds) is refused, naming it', (name, value) => {
    expect(() => load({ [name]: value })).toThrow(new RegExp(`${name} must be at most`));
  });
});
