import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { drainTimeMs } from '../../src/main/shutdown.js';

describe('lifecycle configuration: HTTP timeouts, shutdown grace, log format', () => {
  it('defaults: 10 s headers, 300 s request, 60 s idle, 20 s grace, the format left to the process', () => {
    const c = loadConfig({}, {});
    expect(c.http).toEqual({ headersTimeoutMs: 10_000, requestTimeoutMs: 300_000, idleTimeoutMs: 60_000 });
    expect(c.shutdownGraceMs).toBe(20_000);
    expect(c.logFormat).toBeUndefined();
    expect(c.inContainer).toBe(false);
  });

  it.each<[Record<string, string>, (c: ReturnType<typeof loadConfig>) => unknown, unknown]>([
    [{ FANOUT_HTTP_HEADERS_TIMEOUT_SECONDS: '3' }, (c) => c.http.headersTimeoutMs, 3000],
    [{ FANOUT_HTTP_REQUEST_TIMEOUT_SECONDS: '0' }, (c) => c.http.requestTimeoutMs, 0],
    [{ FANOUT_HTTP_REQUEST_TIMEOUT_SECONDS: '0', FANOUT_HTTP_HEADERS_TIMEOUT_SECONDS: '30' }, (c) => c.http.headersTimeoutMs, 30_000],
    [{ FANOUT_HTTP_IDLE_TIMEOUT_SECONDS: '5', FANOUT_EVENTS_HEARTBEAT_MS: '4000' }, (c) => c.http.idleTimeoutMs, 5000],
    [{ FANOUT_SHUTDOWN_GRACE_SECONDS: '45' }, (c) => c.shutdownGraceMs, 45_000],
    [{ FANOUT_LOG_FORMAT: 'pretty' }, (c) => c.logFormat, 'pretty'],
    [{ FANOUT_LOG_FORMAT: 'json' }, (c) => c.logFormat, 'json'],
    [{ FANOUT_LOG_FORMAT: '' }, (c) => c.logFormat, undefined],
    [{ KUBERNETES_SERVICE_HOST: '10.0.0.1', FANOUT_KUBERNETES: 'off' }, (c) => c.inContainer, true],
    [{ container: 'podman' }, (c) => c.inContainer, true],
  ])('%j', (env, read, want) => {
    expect(read(loadConfig({}, env))).toEqual(want);
  });

  it.each([
    [{ FANOUT_HTTP_HEADERS_TIMEOUT_SECONDS: '0' }, /FANOUT_HTTP_HEADERS_TIMEOUT_SECONDS must be an integer >= 1/],
    [{ FANOUT_HTTP_HEADERS_TIMEOUT_SECONDS: '20', FANOUT_HTTP_REQUEST_TIMEOUT_SECONDS: '10' }, /must not exceed FANOUT_HTTP_REQUEST_TIMEOUT_SECONDS/],
    [{ FANOUT_HTTP_IDLE_TIMEOUT_SECONDS: 'soon' }, /FANOUT_HTTP_IDLE_TIMEOUT_SECONDS/],
    [{ FANOUT_SHUTDOWN_GRACE_SECONDS: '0' }, /FANOUT_SHUTDOWN_GRACE_SECONDS must be an integer >= 1/],
    [{ FANOUT_LOG_FORMAT: 'yaml' }, /FANOUT_LOG_FORMAT must be json or pretty, got "yaml"/],
    [{ FANOUT_HTTP_IDLE_TIMEOUT_SECONDS: '10', FANOUT_EVENTS_HEARTBEAT_MS: '10000' }, /FANOUT_EVENTS_HEARTBEAT_MS \(10000\) must be shorter than FANOUT_HTTP_IDLE_TIMEOUT_SECONDS \(10 s\)/],
  ])('bad %j stops start-up with one line', (env, message) => {
    expect(() => loadConfig({}, env)).toThrow(ConfigError);
    expect(() => loadConfig({}, env)).toThrow(message);
  });
});

describe('drainTimeMs', () => {
  it.each([
    [20_000, 17_000],
    [30_000, 27_000],
    [6_000, 4_000],
    [3_000, 2_000],
    [1_000, 667],
  ])('grace %i ms: parts cut at %i ms', (grace, drain) => {
    expect(Math.round(drainTimeMs(grace))).toBe(drain);
  });
});
