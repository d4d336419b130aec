import { describe, expect, it } from 'vitest';
import { isMutating, parseScopes, requiredScope } from '../../src/domain/scopes.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('the scope each call needs', () => {
  it.each([
    ['GET', '/v1/batches', 'read'],
    ['GET', '/v1/batches/b1/items/0', 'read'],
    ['GET', '/v1/batches/b1/webhook-deliveries', 'read'],
    ['GET', '/v1/schedules', 'read'],
    ['POST', '/v1/batches', 'write'],
    ['POST', '/v1/batches/b1/cancel', 'write'],
    ['PATCH', '/v1/schedules/s1', 'write'],
    ['DELETE', '/v1/batches', 'write'],
    ['PUT', '/v1/batches/b1/items/0/result', 'write'],
    ['POST', '/v1/schedules/s1/trigger', 'write'],
    ['GET', '/v1/api-keys', 'admin'],
    ['POST', '/v1/api-keys', 'admin'],
    ['DELETE', '/v1/api-keys/k1', 'admin'],
    ['GET', '/v1/webhook-endpoints', 'admin'],
    ['POST', '/v1/webhook-endpoints/w1/rotate-secret', 'admin'],
    ['GET', '/v1/webhook-endpoints/w1/webhook-deliveries', 'admin'],
    ['GET', '/v1/batch-webhook-secret', 'admin'],
    ['POST', '/v1/batch-webhook-secret/rotate', 'admin'],
    ['POST', '/v1/webhook-deliveries/d1/redeliver', 'admin'],
    ['GET', '/v1/audit-events', 'admin'],
    // a path that only starts like an admin one
    ['GET', '/v1/api-keysx', 'read'],
  ])('%s %s needs %s', (method, path, scope) => {
    expect(requiredScope(method, path)).toBe(scope);
  });

  it('audits every method but GET, HEAD and OPTIONS', () => {
    expect(['POST', 'PUT', 'PATCH', 'DELETE'].every(isMutating)).toBe(true);
    expect(['GET', 'HEAD', 'OPTIONS'].some(isMutating)).toBe(false);
  });

  it.each([
    ['["read","write","admin"]', ['read', 'write', 'admin']],
    ['["admin","read"]', ['read', 'admin']],
    ['["read","root"]', ['read']],
    ['not json', []],
    ['{"read":true}', []],
  ])('reads stored scopes %s, keeping only known ones', (json, scopes) => {
    expect(parseScopes(json)).toEqual(scopes);
  });
});

describe('FANOUT_ADMIN_KEY', () => {
  it('is unset by default, refused when short, kept when long enough', () => {
    expect(loadConfig({}, {}).adminKey).toBeUndefined();
    expect(() => loadConfig({}, { FANOUT_ADMIN_KEY: 'short' })).toThrow(ConfigError);
    expect(loadConfig({}, { FANOUT_ADMIN_KEY: 'x'.repeat(16) }).adminKey).toBe('x'.repeat(16));
  });

  it('audit retention is whole days of at least one', () => {
    expect(loadConfig({}, {}).auditRetentionMs).toBe(90 * 86_400_000);
    expect(loadConfig({}, { FANOUT_AUDIT_RETENTION_DAYS: '7' }).auditRetentionMs).toBe(7 * 86_400_000);
    expect(() => loadConfig({}, { FANOUT_AUDIT_RETENTION_DAYS: '0' })).toThrow(ConfigError);
  });
});
