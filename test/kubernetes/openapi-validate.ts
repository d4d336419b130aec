import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { Ajv, type ErrorObject, type SchemaValidateFunction, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

/**
 * Validates Kubernetes manifests against the OpenAPI v3 schemas of a running API server, the
 * same schemas the server's own field validation is generated from. Stricter than the schemas
 * as served, in the ways the server is strict when it decodes:
 *
 * - an unknown field is an error: Kubernetes schemas list `properties` without
 *   `additionalProperties: false`, so it is added to every object schema that lists properties
 *   and says nothing else about extra keys (maps such as `labels` say `additionalProperties`;
 *   `x-kubernetes-preserve-unknown-fields` objects are left open);
 * - a Quantity (`resources.limits.memory`, `storage`) must be a number or a string in the
 *   Quantity grammar (the schema only says string-or-number);
 * - the keys of an `x-kubernetes-list-type: map` list (container names, env names, ports) must
 *   be unique;
 * - `metadata.name` (or `generateName`) is required.
 *
 * A `null` object field counts as absent, as the API server decodes it.
 */

/** How to reach the API server: its URL, a bearer token and the CA that signed its cert (PEM). */
export interface KubeConnection {
  server: string;
  token: string;
  ca?: string;
}

/** Validates one parsed manifest; answers one line per problem, empty when it is valid. */
export type ValidateManifest = (doc: unknown) => string[];

export interface ManifestValidator {
  validateManifest: ValidateManifest;
  /** `apiVersion/kind` of every kind the loaded schemas cover, e.g. `apps/v1/Deployment` */
  kinds(): string[];
}

/** The group versions Fanout's manifests and deploy/ use. */
export const DEFAULT_GROUP_VERSIONS = [
  'api/v1',
  'apis/apps/v1',
  'apis/batch/v1',
  'apis/rbac.authorization.k8s.io/v1',
  'apis/policy/v1',
  'apis/networking.k8s.io/v1',
  'apis/authorization.k8s.io/v1',
];

/** The connection in a kubeconfig's current context (token user, CA file or data). */
export function connectionFromKubeconfig(kubeconfigPath: string): KubeConnection {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user?.token) throw new Error(`${kubeconfigPath}: no current cluster with a token user`);
  const ca = cluster.caData ? Buffer.from(cluster.caData, 'base64').toString('utf8') : cluster.caFile ? readFileSync(cluster.caFile, 'utf8') : undefined;
  return { server: cluster.server, token: user.token, ca };
}

/** One HTTPS request to the API server; resolves with the status and the parsed JSON body (or the text when it is not JSON). */
export function kubeRequest(conn: KubeConnection, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const url = new URL(path, conn.server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: conn.ca,
        headers: {
          authorization: `Bearer ${conn.token}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${url.pathname}: no answer in 30 s`)));
    req.end(payload);
  });
}

/** Fetches `/openapi/v3` and the listed group versions' documents from the server and builds a validator from them. */
export async function loadManifestValidator(conn: KubeConnection, groupVersions: string[] = DEFAULT_GROUP_VERSIONS): Promise<ManifestValidator> {
  const index = await kubeRequest(conn, 'GET', '/openapi/v3');
  if (index.status !== 200) throw new Error(`GET /openapi/v3: HTTP ${index.status}`);
  const paths = (index.body as { paths: Record<string, { serverRelativeURL: string }> }).paths;
  const docs = await Promise.all(
    groupVersions.map(async (gv) => {
      const entry = paths[gv];
      if (!entry) throw new Error(`the API server serves no OpenAPI v3 document for ${gv}`);
      const res = await kubeRequest(conn, 'GET', entry.serverRelativeURL);
      if (res.status !== 200) throw new Error(`GET ${entry.serverRelativeURL}: HTTP ${res.status}`);
      return res.body as OpenApiDocument;
    }),
  );
  return buildManifestValidator(docs);
}

interface OpenApiDocument {
  components?: { schemas?: Record<string, Schema> };
}

type Schema = { [keyword: string]: unknown };

const ROOT_ID = 'https://openapi.kubernetes.invalid/v3';
const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';
/** apimachinery's Quantity grammar: signed decimal number, then a binary SI, decimal SI or exponent suffix */
export const QUANTITY_PATTERN = '^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$';

/** Builds a validator from OpenAPI v3 documents already fetched (one per group version). */
export function buildManifestValidator(docs: OpenApiDocument[]): ManifestValidator {
  const definitions: Record<string, Schema> = {};
  const byKind = new Map<string, string>();
  for (const doc of docs) {
    for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
      definitions[name] = tighten(schema) as Schema;
      for (const gvk of (schema['x-kubernetes-group-version-kind'] as Array<{ group: string; version: string; kind: string }> | undefined) ?? []) {
        byKind.set(`${gvk.group ? `${gvk.group}/` : ''}${gvk.version}/${gvk.kind}`, name);
      }
    }
  }
  definitions[QUANTITY] = {
    oneOf: [{ type: 'string', pattern: QUANTITY_PATTERN }, { type: 'number' }],
    errorMessage: 'a quantity',
  };

  const ajv = new Ajv({ strict: false, allErrors: true, verbose: true, validateFormats: true });
  addFormats(ajv);
  ajv.addFormat('int-or-string', true);
  ajv.addKeyword({
    keyword: 'x-kubernetes-list-map-keys',
    type: 'array',
    schemaType: 'array',
    errors: true,
    validate: uniqueMapKeys,
  });
  ajv.addSchema({ $id: ROOT_ID, definitions });

  const compiled = new Map<string, ValidateFunction>();
  const validatorFor = (schemaName: string) => {
    let fn = compiled.get(schemaName);
    if (!fn) {
      fn = ajv.getSchema(`${ROOT_ID}#/definitions/${pointerEscape(schemaName)}`);
      if (!fn) throw new Error(`no schema ${schemaName}`);
      compiled.set(schemaName, fn);
    }
    return fn;
  };

  const validateManifest: ValidateManifest = (doc) => {
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return ['a manifest must be an object'];
    const m = stripNulls(doc) as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; generateName?: unknown } };
    const where = `${String(m.kind ?? '?')} ${String(m.metadata?.name ?? m.metadata?.generateName ?? '?')}`;
    if (typeof m.apiVersion !== 'string' || typeof m.kind !== 'string') return [`${where}: apiVersion and kind are required`];
    const schemaName = byKind.get(`${m.apiVersion}/${m.kind}`);
    if (!schemaName) return [`${where}: no schema for ${m.apiVersion} ${m.kind} in the loaded group versions`];
    const errors: string[] = [];
    if (!m.metadata?.name && !m.metadata?.generateName) errors.push(`${where}: /metadata/name is required`);
    const validate = validatorFor(schemaName);
    if (!validate(m)) errors.push(...formatErrors(validate.errors ?? []).map((e) => `${where}: ${e}`));
    return [...new Set(errors)];
  };

  return { validateManifest, kinds: () => [...byKind.keys()].sort() };
}

// ajv-formats is CommonJS with a default export; under NodeNext its type is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

/**
 * A copy of a schema ready for ajv: `#/components/schemas/X` refs point into the combined
 * `definitions`, object schemas that list properties reject other keys, `nullable` is dropped
 * (nulls are stripped from manifests instead).
 */
function tighten(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(tighten);
  if (node === null || typeof node !== 'object') return node;
  const out: Schema = {};
  for (const [k, v] of Object.entries(node as Schema)) {
    if (k === 'description' || k === 'nullable' || k === 'default') continue;
    if (k === '$ref' && typeof v === 'string') {
      out.$ref = v.replace(/^#\/components\/schemas\/(.*)$/, (_m, name: string) => `${ROOT_ID}#/definitions/${pointerEscape(name)}`);
    } else if (k === 'properties' && v && typeof v === 'object') {
      out.properties = Object.fromEntries(Object.entries(v as Schema).map(([p, s]) => [p, tighten(s)]));
    } else if (k === 'x-kubernetes-group-version-kind' || k === 'enum' || k === 'required' || k === 'x-kubernetes-list-map-keys') {
      out[k] = v;
    } else {
      out[k] = tighten(v);
    }
  }
  if (out.properties && !('additionalProperties' in out) && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  return out;
}

/** `x-kubernetes-list-map-keys`: no two entries of a map-typed list may share their key fields. */
const uniqueMapKeys: SchemaValidateFunction = (keys: string[], data: unknown[]) => {
  const seen = new Set<string>();
  for (const item of data) {
    if (item === null || typeof item !== 'object') continue;
    const key = JSON.stringify(keys.map((k) => (item as Record<string, unknown>)[k]));
    if (seen.has(key)) {
      uniqueMapKeys.errors = [{ keyword: 'x-kubernetes-list-map-keys', message: `duplicate entry with ${keys.join(', ')} = ${key.slice(1, -1)}`, params: {} }];
      return false;
    }
    seen.add(key);
  }
  return true;
};

function pointerEscape(name: string): string {
  return name.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Drops object fields whose value is null, recursively (the API server decodes them as unset). */
function stripNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripNulls);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, stripNulls(v)]),
  );
}

/**
 * One line per ajv error, phrased like the API server's field errors. A failed `oneOf` (int or
 * string, quantity) reports once, not once per branch.
 */
function formatErrors(errors: ErrorObject[]): string[] {
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => e.instancePath));
  const lines: string[] = [];
  for (const e of errors) {
    const path = e.instancePath || '/';
    if (e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && oneOfPaths.has(e.instancePath) && /\/(oneOf|anyOf)\/\d+\//.test(e.schemaPath)) continue;
    if (e.keyword === 'additionalProperties') {
      lines.push(`${path}: unknown field "${String((e.params as { additionalProperty: string }).additionalProperty)}"`);
    } else if (e.keyword === 'oneOf' || e.keyword === 'anyOf') {
      lines.push(`${path}: ${describeOneOf(e)} ${JSON.stringify(e.data)}`);
    } else if (e.keyword === 'enum') {
      lines.push(`${path}: ${e.message}: ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}, got ${JSON.stringify(e.data)}`);
    } else if (e.keyword === 'type' || e.keyword === 'format' || e.keyword === 'pattern') {
      lines.push(`${path}: ${e.message}, got ${JSON.stringify(e.data)}`);
    } else {
      lines.push(`${path}: ${e.message}`);
    }
  }
  return lines;
}

function describeOneOf(e: ErrorObject): string {
  const schema = e.parentSchema as { errorMessage?: string; format?: string } | undefined;
  if (schema?.errorMessage) return `must be ${schema.errorMessage}, got`;
  if (schema?.format === 'int-or-string') return 'must be an integer or a string, got';
  return 'matches none of the allowed types:';
}
