import YAML from 'yaml';
import { problemFromResponse } from '../../sdk/src/index.js';
import { toUnreachable, ServerUnreachableError } from './api.js';
import type { Io } from './client-commands.js';
import { CliError } from './errors.js';
import type { OutputFormat } from './options.js';
import { ageOf, renderResourceTable, timeOf, type ResourceTable } from './tables.js';

/**
 * `fanout admin tenants|keys …` (the server admin's calls, with --admin-key / FANOUT_ADMIN_KEY),
 * `fanout keys …` (a tenant's own keys, with an admin-scoped --api-key) and `fanout audit`.
 * Lists print a table by default, one object YAML; `-o json|yaml|name|wide` as for `fanout get`.
 * A created key is printed once, alone on stdout (with `-o json|yaml`: the whole answer).
 */

export interface AuthOptions {
  server: string;
  apiKey?: string;
  adminKey?: string;
  output?: OutputFormat;
}

interface Tenant {
  id: string;
  name: string;
  weight: number;
  quotas: Record<string, number | null>;
  disabled: boolean;
  createdAt: string;
}

interface ApiKey {
  id: string;
  name: string | null;
  prefix: string | null;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revoked: boolean;
  key?: string;
}

interface AuditEvent {
  id: string;
  tenantId: string | null;
  keyId: string | null;
  scope: string;
  action: string;
  target: string;
  status: number;
  sourceAddress: string | null;
  at: string;
}

const dash = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : String(v));

const TENANT_TABLE: ResourceTable<Tenant> = {
  columns: [{ header: 'NAME', shrinkable: true, minWidth: 8 }, { header: 'ID' }, { header: 'WEIGHT' }, { header: 'DISABLED' }, { header: 'AGE' }],
  cells: (t, now) => [t.name, t.id, String(t.weight), t.disabled ? 'True' : 'False', ageOf(t.createdAt, now)],
  wideColumns: [{ header: 'QUOTAS' }],
  wideCells: (t) => [Object.entries(t.quotas).map(([k, v]) => `${k}=${v ?? 'unlimited'}`).join(',') || '-'],
};

const keyState = (k: ApiKey, now: number) => (k.revoked ? 'Revoked' : k.expiresAt && Date.parse(k.expiresAt) <= now ? 'Expired' : 'Active');

const KEY_TABLE: ResourceTable<ApiKey> = {
  columns: [{ header: 'NAME', shrinkable: true, minWidth: 6 }, { header: 'ID' }, { header: 'PREFIX' }, { header: 'SCOPES' }, { header: 'STATE' }, { header: 'LAST USED' }, { header: 'AGE' }],
  cells: (k, now) => [dash(k.name), k.id, dash(k.prefix), k.scopes.join(','), keyState(k, now), k.lastUsedAt ? ageOf(k.lastUsedAt, now) : '-', ageOf(k.createdAt, now)],
  wideColumns: [{ header: 'EXPIRES' }],
  wideCells: (k) => [timeOf(k.expiresAt)],
};

const AUDIT_TABLE: ResourceTable<AuditEvent> = {
  columns: [{ header: 'TIME' }, { header: 'ACTION', shrinkable: true, minWidth: 12 }, { header: 'STATUS' }, { header: 'KEY' }],
  cells: (e) => [timeOf(e.at), e.action, String(e.status), e.keyId ?? 'admin'],
  wideColumns: [{ header: 'TENANT' }, { header: 'TARGET' }, { header: 'SOURCE' }],
  wideCells: (e) => [dash(e.tenantId), e.target, dash(e.sourceAddress)],
};

/** One call to the API with `key`; a problem answer becomes the SDK's problem error (errors.ts prints it). */
async function call<T>(server: string, key: string | undefined, method: string, path: string, body?: unknown): Promise<T> {
  let base: URL;
  try {
    base = new URL(server);
  } catch {
    throw new ServerUnreachableError(server, 'not a valid URL (expected e.g. http://127.0.0.1:8080)');
  }
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(new URL(path.replace(/^\//, ''), base.href.endsWith('/') ? base : `${base.href}/`), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw toUnreachable(server, err);
  }
  if (!res.ok) throw await problemFromResponse(res);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

function adminKeyOf(opts: AuthOptions): string {
  if (!opts.adminKey) throw new CliError('the admin API needs the server admin key: --admin-key or FANOUT_ADMIN_KEY', 2);
  return opts.adminKey;
}

/** Every object of a cursor-paged list. */
async function allPages<T>(fetchPage: (cursor: string | null) => Promise<{ items: T[]; nextCursor: string | null }>): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const page = await fetchPage(cursor);
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

function print<T>(io: Io, table: ResourceTable<T>, objects: T[], single: boolean, format: OutputFormat | undefined, name: (o: T) => string, plural: string): void {
  const f = format ?? (single ? 'yaml' : 'table');
  const document = single ? objects[0] : objects;
  if (f === 'json') io.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  else if (f === 'yaml') io.stdout.write(YAML.stringify(document));
  else if (f === 'name') io.stdout.write(objects.map((o) => `${name(o)}\n`).join(''));
  else if (objects.length === 0) io.stderr.write(`No ${plural} found.\n`);
  else io.stdout.write(`${renderResourceTable(table, objects, Date.now(), { wide: f === 'wide', width: io.width })}\n`);
}

/** `--quota name=value`, repeatable; `unlimited` or `null` for no limit. */
export function parseQuotaFlags(flags: string[] | undefined): Record<string, number | null> | undefined {
  if (!flags || flags.length === 0) return undefined;
  const out: Record<string, number | null> = {};
  for (const flag of flags) {
    const m = /^([A-Za-z]+)=(\d+|null|unlimited)$/.exec(flag);
    if (!m) throw new CliError(`--quota expects NAME=NUMBER or NAME=unlimited, e.g. --quota runningItems=100 (got "${flag}")`, 2);
    out[m[1]!] = m[2] === 'null' || m[2] === 'unlimited' ? null : Number(m[2]);
  }
  return out;
}

function weightOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new CliError(`--weight expects a whole number (got "${value}")`, 2);
  return Number(value);
}

export interface TenantFlags extends AuthOptions {
  weight?: string;
  quota?: string[];
  name?: string;
  disable?: boolean;
  enable?: boolean;
}

const tenantName = (t: Tenant) => t.id;

export async function adminTenantsCommand(action: string, arg: string | undefined, opts: TenantFlags, io: Io): Promise<number> {
  const key = adminKeyOf(opts);
  const need = (what: string) => {
    if (!arg) throw new CliError(`fanout admin tenants ${action} needs ${what}`, 2);
    return arg;
  };
  switch (action) {
    case 'create': {
      const t = await call<Tenant>(opts.server, key, 'POST', '/v1/admin/tenants', { name: need('a NAME'), weight: weightOf(opts.weight), quotas: parseQuotaFlags(opts.quota) });
      print(io, TENANT_TABLE, [t], true, opts.output ?? 'name', tenantName, 'tenants');
      return 0;
    }
    case 'list': {
      const all = await allPages((cursor) => call<{ items: Tenant[]; nextCursor: string | null }>(opts.server, key, 'GET', `/v1/admin/tenants?limit=500${cursor ? `&cursor=${cursor}` : ''}`));
      print(io, TENANT_TABLE, all, false, opts.output, tenantName, 'tenants');
      return 0;
    }
    case 'get':
      print(io, TENANT_TABLE, [await call<Tenant>(opts.server, key, 'GET', `/v1/admin/tenants/${encodeURIComponent(need('a tenant ID'))}`)], true, opts.output, tenantName, 'tenants');
      return 0;
    case 'update': {
      if (opts.enable && opts.disable) throw new CliError('give --enable or --disable, not both', 2);
      const patch = { name: opts.name, weight: weightOf(opts.weight), quotas: parseQuotaFlags(opts.quota), disabled: opts.disable ? true : opts.enable ? false : undefined };
      print(io, TENANT_TABLE, [await call<Tenant>(opts.server, key, 'PATCH', `/v1/admin/tenants/${encodeURIComponent(need('a tenant ID'))}`, patch)], true, opts.output, tenantName, 'tenants');
      return 0;
    }
    case 'disable': {
      const t = await call<Tenant>(opts.server, key, 'DELETE', `/v1/admin/tenants/${encodeURIComponent(need('a tenant ID'))}`);
      io.stdout.write(`tenant ${t.id} disabled\n`);
      return 0;
    }
    default:
      throw new CliError(`unknown action "${action}": use create, list, get, update or disable`, 2);
  }
}

export interface KeyFlags extends AuthOptions {
  tenant?: string;
  scope?: string[];
  name?: string;
  expiresAt?: string;
}

/** `fanout admin keys …` (any tenant, with the admin key and --tenant) or `fanout keys …` (your own, with your key). */
export async function keysCommand(asAdmin: boolean, action: string, arg: string | undefined, opts: KeyFlags, io: Io): Promise<number> {
  let base = '/v1/api-keys';
  let key = opts.apiKey;
  if (asAdmin) {
    key = adminKeyOf(opts);
    if (!opts.tenant) throw new CliError('fanout admin keys needs --tenant ID', 2);
    base = `/v1/admin/tenants/${encodeURIComponent(opts.tenant)}/api-keys`;
  }
  switch (action) {
    case 'create': {
      const created = await call<ApiKey>(opts.server, key, 'POST', base, { name: opts.name, scopes: opts.scope ?? ['read', 'write'], expiresAt: opts.expiresAt });
      if (opts.output === 'json' || opts.output === 'yaml') print(io, KEY_TABLE, [created], true, opts.output, (k) => k.id, 'keys');
      else {
        io.stdout.write(`${created.key}\n`);
        io.stderr.write(`created key ${created.id} (${created.scopes.join(',')}): it is shown only now\n`);
      }
      return 0;
    }
    case 'list': {
      const { items } = await call<{ items: ApiKey[] }>(opts.server, key, 'GET', base);
      print(io, KEY_TABLE, items, false, opts.output, (k) => k.id, 'keys');
      return 0;
    }
    case 'revoke': {
      if (!arg) throw new CliError('revoke needs a key ID (see the list)', 2);
      await call(opts.server, key, 'DELETE', `${base}/${encodeURIComponent(arg)}`);
      io.stdout.write(`key ${arg} revoked\n`);
      return 0;
    }
    default:
      throw new CliError(`unknown action "${action}": use create, list or revoke`, 2);
  }
}

/** `fanout audit`: the audit log, newest first (with --admin-key: every tenant, or --tenant). */
export async function auditCommand(opts: AuthOptions & { tenant?: string; limit?: number }, io: Io): Promise<number> {
  const key = opts.adminKey ?? opts.apiKey;
  const query = new URLSearchParams({ limit: String(opts.limit ?? 100) });
  if (opts.tenant) query.set('tenant', opts.tenant);
  const page = await call<{ items: AuditEvent[] }>(opts.server, key, 'GET', `/v1/audit-events?${query}`);
  print(io, AUDIT_TABLE, page.items, false, opts.output, (e) => e.id, 'audit events');
  return 0;
}
