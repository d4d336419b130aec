import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import type { CoreV1Api, V1Container, V1Pod } from '@kubernetes/client-node';

/**
 * The environment and command line of one container of the test kubelet, resolved the way the
 * real kubelet does it: envFrom, then env (later entries win), `valueFrom` fieldRef /
 * secretKeyRef / configMapKeyRef / resourceFieldRef, and `$(VAR)` references in env values,
 * command and args. A missing Secret, ConfigMap or key that is not optional is a ConfigError,
 * which the kubelet reports as CreateContainerConfigError and retries.
 */

/** What an image bakes in: its ENV lines, ENTRYPOINT and CMD. */
export interface TestImage {
  env?: Record<string, string>;
  entrypoint?: string[];
  cmd?: string[];
}

export class ConfigError extends Error {}

/** The pod IP and host IP the test kubelet reports for every pod: all processes run on this machine. */
export const LOCAL_IP = '127.0.0.1';

interface ResolveContext {
  pod: V1Pod;
  container: V1Container;
  core: CoreV1Api;
  /** values every container gets before its own: HOSTNAME, KUBERNETES_SERVICE_HOST, volume paths, … */
  base: Record<string, string>;
}

/** The container's own variables (base, envFrom, env), without the image's or the host's. */
export async function resolveContainerEnv(ctx: ResolveContext): Promise<Record<string, string>> {
  const { pod, container, core } = ctx;
  const ns = pod.metadata?.namespace ?? 'default';
  const secrets = new Map<string, Record<string, string> | undefined>();
  const configMaps = new Map<string, Record<string, string> | undefined>();
  const secret = async (name: string, optional: boolean | undefined) => {
    if (!secrets.has(name)) {
      const found = await readOrUndefined(() => core.readNamespacedSecret({ name, namespace: ns }));
      secrets.set(name, found && Object.fromEntries(Object.entries(found.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])));
    }
    const data = secrets.get(name);
    if (!data && !optional) throw new ConfigError(`secret "${name}" not found`);
    return data;
  };
  const configMap = async (name: string, optional: boolean | undefined) => {
    if (!configMaps.has(name)) {
      const found = await readOrUndefined(() => core.readNamespacedConfigMap({ name, namespace: ns }));
      configMaps.set(name, found && { ...(found.data ?? {}) });
    }
    const data = configMaps.get(name);
    if (!data && !optional) throw new ConfigError(`configmap "${name}" not found`);
    return data;
  };

  const env: Record<string, string> = { ...ctx.base };
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    const data = from.secretRef
      ? await secret(from.secretRef.name ?? '', from.secretRef.optional)
      : from.configMapRef
        ? await configMap(from.configMapRef.name ?? '', from.configMapRef.optional)
        : undefined;
    for (const [k, v] of Object.entries(data ?? {})) env[prefix + k] = v;
  }
  for (const e of container.env ?? []) {
    if (e.valueFrom) {
      const v = e.valueFrom;
      let value: string | undefined;
      if (v.fieldRef) value = fieldValue(pod, v.fieldRef.fieldPath);
      else if (v.secretKeyRef) value = keyOf(await secret(v.secretKeyRef.name ?? '', v.secretKeyRef.optional), 'secret', v.secretKeyRef);
      else if (v.configMapKeyRef) value = keyOf(await configMap(v.configMapKeyRef.name ?? '', v.configMapKeyRef.optional), 'configmap', v.configMapKeyRef);
      else if (v.resourceFieldRef) value = resourceValue(container, v.resourceFieldRef.resource);
      if (value !== undefined) env[e.name] = value;
    } else {
      env[e.name] = expandReferences(e.value ?? '', env);
    }
  }
  return env;
}

function keyOf(data: Record<string, string> | undefined, kind: string, ref: { name?: string; key: string; optional?: boolean }): string | undefined {
  if (!data) return undefined;
  if (ref.key in data) return data[ref.key];
  if (ref.optional) return undefined;
  throw new ConfigError(`couldn't find key ${ref.key} in ${kind} ${ref.name}`);
}

async function readOrUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** The value of a downward-API field path, as the real kubelet gives it. */
export function fieldValue(pod: V1Pod, path: string): string {
  const meta = pod.metadata ?? {};
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (keyed) return (keyed[1] === 'labels' ? meta.labels : meta.annotations)?.[keyed[2]] ?? '';
  switch (path) {
    case 'metadata.name':
      return meta.name ?? '';
    case 'metadata.namespace':
      return meta.namespace ?? '';
    case 'metadata.uid':
      return meta.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.podIP':
    case 'status.hostIP':
    case 'status.podIPs':
    case 'status.hostIPs':
      return LOCAL_IP;
    default:
      throw new ConfigError(`unsupported fieldRef ${path}`);
  }
}

/** A container's limit (else request) of a resource, as written; empty when unset. */
function resourceValue(container: V1Container, resource: string): string {
  const [kind, name] = resource.split('.');
  const res = container.resources ?? {};
  const value = (kind === 'requests' ? res.requests : res.limits)?.[name ?? ''] ?? res.requests?.[name ?? ''];
  return value === undefined ? '' : String(value);
}

/** `$(NAME)` → its value when defined (else left as written); `$$` → `$`. */
export function expandReferences(text: string, vars: Record<string, string>): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '$' || i + 1 >= text.length) {
      out += c;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = text.indexOf(')', i + 2);
      if (close < 0) {
        out += text.slice(i);
        break;
      }
      const name = text.slice(i + 2, close);
      out += name in vars ? vars[name] : text.slice(i, close + 1);
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

/** The argv a container runs: its command (else the image's entrypoint), then its args (else, with no command, the image's cmd). */
export function containerArgv(container: V1Container, image: TestImage | undefined, vars: Record<string, string>): string[] {
  const argv = container.command?.length
    ? [...container.command, ...(container.args ?? [])]
    : [...(image?.entrypoint ?? []), ...(container.args ?? image?.cmd ?? [])];
  return argv.map((a) => expandReferences(a, vars));
}

/** The first executable `name` in `path` (a PATH value); a name with a slash is taken as it is. */
export async function lookPath(name: string, path: string, cwd: string): Promise<string | undefined> {
  const candidates = name.includes('/') ? [isAbsolute(name) ? name : join(cwd, name)] : path.split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
