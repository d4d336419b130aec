import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startTestService, type TestService } from '../helpers/service.js';
import { runCli } from './run-cli.js';

/** `fanout admin tenants|keys`, `fanout keys` and `fanout audit` as real processes against the real service. */
describe('fanout admin, keys and audit', () => {
  const adminKey = `admin-${randomBytes(16).toString('hex')}`;
  let svc: TestService;
  let env: Record<string, string>;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), workers: false, env: { FANOUT_ADMIN_KEY: adminKey } });
    env = { FANOUT_SERVER: svc.url, FANOUT_ADMIN_KEY: adminKey };
  });
  afterAll(async () => svc?.close());

  it('creates a tenant and keys, lists them, revokes one, and reads the audit log', { timeout: 120_000 }, async () => {
    const created = await runCli(['admin', 'tenants', 'create', 'cli-team', '--weight', '3', '--quota', 'runningItems=50', '--quota', 'storedItems=unlimited'], { env });
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const tenantId = created.stdout.trim();
    expect(tenantId).toMatch(/^t_/);

    const got = await runCli(['admin', 'tenants', 'get', tenantId], { env });
    expect(parseYaml(got.stdout)).toMatchObject({ id: tenantId, name: 'cli-team', weight: 3, quotas: { runningItems: 50, storedItems: null } });
    const updated = await runCli(['admin', 'tenants', 'update', tenantId, '--weight', '4', '-o', 'json'], { env });
    expect(JSON.parse(updated.stdout)).toMatchObject({ weight: 4, quotas: { runningItems: 50 } });
    const table = await runCli(['admin', 'tenants', 'list'], { env });
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+ID\s+WEIGHT\s+DISABLED\s+AGE$/);
    expect(table.stdout).toMatch(new RegExp(`cli-team\\s+${tenantId}\\s+4\\s+False`));

    const keyRun = await runCli(['admin', 'keys', 'create', '--tenant', tenantId, '--scope', 'read', '--scope', 'admin', '--name', 'ops'], { env });
    expect(keyRun.code).toBe(0);
    const key = keyRun.stdout.trim();
    expect(key).toMatch(/^fo_/);
    expect(keyRun.stderr).toMatch(/shown only now/);

    // The tenant's own key (admin scope) manages its keys.
    const own = { FANOUT_SERVER: svc.url, FANOUT_API_KEY: key };
    const second = await runCli(['keys', 'create', '--scope', 'read', '-o', 'json'], { env: own });
    const secondKey = JSON.parse(second.stdout);
    expect(secondKey.scopes).toEqual(['read']);
    const list = await runCli(['keys', 'list', '-o', 'name'], { env: own });
    const ids = list.stdout.trim().split('\n');
    expect(ids).toHaveLength(2);
    expect(ids).toContain(secondKey.id);
    const revoked = await runCli(['keys', 'revoke', secondKey.id], { env: own });
    expect(revoked.stdout).toBe(`key ${secondKey.id} revoked\n`);
    const listed = await runCli(['admin', 'keys', 'list', '--tenant', tenantId], { env });
    expect(listed.stdout).toMatch(new RegExp(`${secondKey.id}\\s+\\S+\\s+read\\s+Revoked`));
    expect(listed.stdout).not.toContain(key);

    const audit = await runCli(['audit', '-o', 'json'], { env: own });
    const events = JSON.parse(audit.stdout);
    expect(events[0]).toMatchObject({ action: 'DELETE /v1/api-keys/{keyId}', status: 204 });
    const adminAudit = await runCli(['audit', '--admin-key', adminKey, '--tenant', tenantId], { env: { FANOUT_SERVER: svc.url } });
    expect(adminAudit.stdout).toMatch(/POST \/v1\/admin\/tenants\s+201\s+admin/);

    const disabled = await runCli(['admin', 'tenants', 'disable', tenantId], { env });
    expect(disabled.stdout).toBe(`tenant ${tenantId} disabled\n`);
    const refused = await runCli(['keys', 'list'], { env: own });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/disabled/);
  });

  it('bad input: a problem from the server, or a usage error, and nothing created', { timeout: 60_000 }, async () => {
    const before = (await runCli(['admin', 'tenants', 'list', '-o', 'name'], { env })).stdout;
    const bad = await runCli(['admin', 'tenants', 'create', 'x', '--weight', '0'], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/Invalid request/);
    expect(bad.stderr).toMatch(/\/weight/);
    const usage = await runCli(['admin', 'tenants', 'create', 'x', '--quota', 'runningItems'], { env });
    expect(usage.code).toBe(2);
    const noKey = await runCli(['admin', 'tenants', 'list'], { env: { FANOUT_SERVER: svc.url } });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/FANOUT_ADMIN_KEY/);
    expect((await runCli(['admin', 'tenants', 'list', '-o', 'name'], { env })).stdout).toBe(before);
  });
});
