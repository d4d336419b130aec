import { z } from '@hono/zod-openapi';
import { parseQuotaOverrides } from '../domain/quotas.js';
import { parseScopes, SCOPES } from '../domain/scopes.js';
import type { ApiKeyRow } from '../store/api-keys.js';
import type { TenantRow } from '../store/tenants.js';
import { validationProblem } from './problems.js';

/** Request and response shapes of tenants and API keys (admin and own-key routes share them). */

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Fair-share weight: a tenant with weight 4 gets four times the worker share of one with 1. */
export const MAX_WEIGHT = 1000;

const quotaValue = z
  .number()
  .int()
  .min(0)
  .max(Number.MAX_SAFE_INTEGER)
  .nullable()
  .optional();

export const quotasSchema = z
  .object({
    batchesPerMinute: quotaValue,
    itemsPerMinute: quotaValue,
    storedItems: quotaValue,
    storedResultBytes: quotaValue,
    runningItems: quotaValue,
  })
  .strict()
  .meta({ id: 'QuotaOverrides', description: "A tenant's quotas over the server-wide defaults: a non-negative integer, or null for unlimited; a quota not named keeps the server default." });

const nameSchema = z.string().min(1).max(200).regex(/^[^\u0000-\u001f\u007f]*$/, 'a name has no control characters');
const weightSchema = z.number().int().min(1).max(MAX_WEIGHT).meta({ description: `Fair-share weight, 1 to ${MAX_WEIGHT} (default 1)` });

export const tenantSpecSchema = z.object({ name: nameSchema, weight: weightSchema.optional(), quotas: quotasSchema.optional() }).strict().meta({ id: 'TenantSpec' });

export const tenantPatchSchema = z
  .object({
    name: nameSchema.optional(),
    weight: weightSchema.optional(),
    quotas: quotasSchema.optional().meta({ description: 'Merged into the stored quotas: a number sets one, null makes it unlimited, an absent one is left as it is.' }),
    disabled: z.boolean().optional().meta({ description: "true: every key of the tenant is refused (403) from the next request on; false: they work again." }),
  })
  .strict()
  .meta({ id: 'TenantPatch' });

export const tenantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    weight: z.number().int(),
    quotas: quotasSchema,
    disabled: z.boolean(),
    disabledAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string().nullable(),
  })
  .meta({ id: 'Tenant' });

export const tenantListSchema = z.object({ items: z.array(tenantSchema), nextCursor: z.string().nullable() }).meta({ id: 'TenantList' });

export function tenantView(r: TenantRow) {
  return {
    id: r.id,
    name: r.name,
    weight: r.weight,
    quotas: parseQuotaOverrides(r.quotas),
    disabled: r.disabledAt !== null,
    disabledAt: iso(r.disabledAt),
    createdAt: iso(r.createdAt)!,
    updatedAt: iso(r.updatedAt),
  };
}

export const apiKeySpecSchema = z
  .object({
    name: nameSchema.optional(),
    scopes: z
      .array(z.enum(SCOPES))
      .min(1, 'a key needs at least one scope: read, write or admin')
      .refine((s) => new Set(s).size === s.length, 'each scope once'),
    expiresAt: z.iso.datetime({ offset: true }).optional().meta({ description: 'RFC 3339 time in the future; absent: the key does not expire' }),
  })
  .strict()
  .meta({ id: 'ApiKeySpec' });

export const apiKeySchema = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    prefix: z.string().nullable().meta({ description: "The key's first characters, to tell keys apart (null for the start-up key FANOUT_API_KEY)" }),
    scopes: z.array(z.enum(SCOPES)),
    createdAt: z.string(),
    lastUsedAt: z.string().nullable().meta({ description: 'Written by each API process every FANOUT_KEY_LAST_USED_FLUSH_SECONDS: up to that late' }),
    expiresAt: z.string().nullable(),
    revoked: z.boolean(),
    revokedAt: z.string().nullable(),
  })
  .meta({ id: 'ApiKey' });

export const apiKeyCreatedSchema = apiKeySchema.extend({ key: z.string().meta({ description: 'The key itself: answered here only, stored hashed. Send it as Authorization: Bearer <key>.' }) }).meta({ id: 'ApiKeyCreated' });
export const apiKeyListSchema = z.object({ items: z.array(apiKeySchema) }).meta({ id: 'ApiKeyList' });

export function apiKeyView(r: ApiKeyRow) {
  return {
    id: r.id,
    name: r.name,
    prefix: r.prefix,
    scopes: parseScopes(r.scopes),
    createdAt: iso(r.createdAt)!,
    lastUsedAt: iso(r.lastUsedAt),
    expiresAt: iso(r.expiresAt),
    revoked: r.revokedAt !== null,
    revokedAt: iso(r.revokedAt),
  };
}

/** expiresAt as epoch ms; 422 /expiresAt unless it is in the future. */
export function futureExpiry(expiresAt: string | undefined, now = Date.now()): number | null {
  if (expiresAt === undefined) return null;
  const ms = Date.parse(expiresAt);
  if (!(ms > now)) throw validationProblem([{ pointer: '/expiresAt', detail: `must be in the future (now is ${new Date(now).toISOString()})` }]);
  return ms;
}

export const keyIdParam = z.object({ keyId: z.string().min(1).max(100).openapi({ param: { name: 'keyId', in: 'path' }, example: 'k_5f2c9a1e0b7d3c48' }) });
export const tenantIdParam = z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' }, example: 't_mhz8x3k20000a1b2c3d4e5f60718' }) });
