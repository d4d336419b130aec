import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('webhook configuration', () => {
  it('defaults: 15 s timeout, about three days of retries, 24 h rotation overlap, nothing allowlisted', () => {
    const c = loadConfig({}, {}).webhooks;
    expect(c.timeoutMs).toBe(15_000);
    const total = c.retryScheduleMs.reduce((a, b) => a + b, 0);
    expect(total / 86_400_000).toBeGreaterThan(2.9);
    expect(total / 86_400_000).toBeLessThan(3.3);
    expect(c.secretOverlapMs).toBe(86_400_000);
    expect(c.allow).toEqual({ hosts: [], cidrs: [] });
  });

  it('flags win over the environment', () => {
    const c = loadConfig({ webhookAllow: 'hooks.internal' }, { FANOUT_WEBHOOK_ALLOW: '127.0.0.1' }).webhooks;
    expect(c.allow.hosts).toEqual(['hooks.internal']);
    expect(c.allow.cidrs).toEqual([]);
  });

  it('FANOUT_WEBHOOK_ALLOW_PUBLIC=false: only the allowlist may be called', () => {
    expect(loadConfig({}, { FANOUT_WEBHOOK_ALLOW_PUBLIC: 'false', FANOUT_WEBHOOK_ALLOW: '127.0.0.1' }).webhooks.allow).toMatchObject({ onlyListed: true, hosts: [] });
    expect(loadConfig({}, { FANOUT_WEBHOOK_ALLOW_PUBLIC: 'true' }).webhooks.allow.onlyListed).toBeFalsy();
  });

  it.each([
    [{ FANOUT_WEBHOOK_ALLOW_PUBLIC: 'no' }, /FANOUT_WEBHOOK_ALLOW_PUBLIC must be true or false/],
    [{ FANOUT_WEBHOOK_ALLOW: '10.0.0.0/99' }, /FANOUT_WEBHOOK_ALLOW/],
    [{ FANOUT_WEBHOOK_RETRY_SCHEDULE: '5s,later' }, /FANOUT_WEBHOOK_RETRY_SCHEDULE: "later"/],
    [{ FANOUT_WEBHOOK_TIMEOUT_SECONDS: '0' }, /FANOUT_WEBHOOK_TIMEOUT_SECONDS/],
  ])('bad %j stops start-up with one line', (env, message) => {
    expect(() => loadConfig({}, env)).toThrow(ConfigError);
    expect(() => loadConfig({}, env)).toThrow(message);
  });
});
