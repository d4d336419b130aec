import { createHash, randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { StoreHandle } from './db.js';
import { apiKeys, settings, tenants } from './schema.js';

/** sha256 is enough at rest for long random keys; it keeps authentication cheap per request. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function generateApiKey(): string {
  return `fo_${randomBytes(24).toString('base64url')}`;
}

/** Makes sure `key` exists; a new key gets a tenant of its own. Returns the key's tenant id. */
export function ensureApiKey(store: StoreHandle, key: string, tenantName = 'default'): string {
  const keyHash = hashApiKey(key);
  const found = store.db.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash)).get();
  if (found) return found.tenantId;
  return createTenantForKey(store, key, tenantName);
}

/** Creates a tenant owning `key` (an admin operation: the CLI and tests use it). */
export function createTenantForKey(store: StoreHandle, key: string, tenantName: string): string {
  const now = Date.now();
  const tenantId = `t_${randomBytes(8).toString('hex')}`;
  store.db.transaction((tx) => {
    tx.insert(tenants).values({ id: tenantId, name: tenantName, createdAt: now }).run();
    tx.insert(apiKeys).values({ id: `k_${randomBytes(8).toString('hex')}`, tenantId, keyHash: hashApiKey(key), createdAt: now }).run();
  });
  return tenantId;
}

/** Resolves a bearer key to its tenant, or null. */
export function authenticateApiKey(store: StoreHandle, key: string): string | null {
  const found = store.db.select({ tenantId: apiKeys.tenantId }).from(apiKeys).where(eq(apiKeys.keyHash, hashApiKey(key))).get();
  return found?.tenantId ?? null;
}

/** A server secret kept in the store (signs batch-scoped worker tokens), created once. */
export function serverSecret(store: StoreHandle): string {
  const existing = store.db.select().from(settings).where(eq(settings.key, 'server-secret')).get();
  if (existing) return existing.value;
  const value = randomBytes(32).toString('hex');
  store.db.insert(settings).values({ key: 'server-secret', value }).onConflictDoNothing().run();
  return store.db.select().from(settings).where(eq(settings.key, 'server-secret')).get()!.value;
}

/** Whether any API key exists (a server without one cannot serve any client). */
export function hasAnyApiKey(store: StoreHandle): boolean {
  return store.db.select({ id: apiKeys.id }).from(apiKeys).limit(1).get() !== undefined;
}
