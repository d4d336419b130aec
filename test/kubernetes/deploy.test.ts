import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { buildProgram } from '../../src/cli/program.js';
import { loadConfig } from '../../src/config/config.js';
import { createNamespace, deleteNamespace, describePods, uniqueName, waitFor } from './helpers.js';
import { connectionFromKubeconfig, kubeRequest, loadManifestValidator, type KubeConnection, type ManifestValidator } from './openapi-validate.js';

/**
 * deploy/ (Fanout itself on Kubernetes) and the Containerfile, against the suite's real
 * kube-apiserver and kube-controller-manager: every rendered document matches the server's
 * OpenAPI v3 schemas (unknown fields rejected) and passes a server-side dry run with
 * fieldValidation=Strict; the dev overlay, applied with `kubectl apply -k` into a fresh
 * namespace, gets its ReplicaSets and Pods from the deployment controller, with no Pod Security
 * "restricted" warning; the ServiceAccount can do exactly what the Role lists.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const kubectlPath = inject('kubectlPath');
const kubeconfigPath = inject('kubeconfigPath');

type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the suite's kubectl against the suite's control plane; never throws on a non-zero exit. */
function kubectl(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(kubectlPath, ['--kubeconfig', kubeconfigPath, ...args], { cwd: REPO, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}

async function kustomize(dir: string): Promise<Doc[]> {
  const r = await kubectl(['kustomize', dir]);
  expect(r.code, r.stderr).toBe(0);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Doc);
}

const find = (docs: Doc[], kind: string, name: string): Doc => {
  const doc = docs.find((d) => d.kind === kind && (d.metadata.name === name || d.metadata.name.startsWith(`${name}-`)));
  if (!doc) throw new Error(`no ${kind} ${name} in ${docs.map((d) => `${d.kind}/${d.metadata.name}`).join(', ')}`);
  return doc;
};
const podSpec = (d: Doc) => d.spec.template.spec;
const container = (d: Doc) => podSpec(d).containers[0];

/** What the Role grants, as (group, resource) → verbs. The test checks the manifest and the live authorizer against it. */
const GRANTS: Record<string, string[]> = {
  'batch/jobs': ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  '/pods': ['get', 'list', 'watch'],
  '/services': ['get', 'list', 'watch', 'create', 'delete'],
  '/secrets': ['create', 'get', 'delete'],
};

let base: Doc[];
let dev: Doc[];
let ha: Doc[];
let validator: ManifestValidator;
let conn: KubeConnection;
let scratch: string;
const namespaces: string[] = [];

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'fanout-deploy-test-'));
  conn = connectionFromKubeconfig(kubeconfigPath);
  [base, dev, ha, validator] = await Promise.all([kustomize('deploy/base'), kustomize('deploy/overlays/dev'), kustomize('deploy/overlays/ha'), loadManifestValidator(conn)]);
});

afterAll(async () => {
  // wait: the test kubelet stops the pods' processes (redis-server among them) as they go
  await Promise.all(namespaces.map((ns) => deleteNamespace(ns, { wait: true, timeoutMs: 90_000 })));
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function freshNamespace(prefix: string): Promise<string> {
  const ns = await createNamespace(uniqueName(prefix));
  namespaces.push(ns);
  return ns;
}

/**
 * A kustomization that puts an overlay (deploy/overlays/<name>) in namespace `ns` (kustomize
 * renames the Namespace object and the RoleBinding's subject too), so `kubectl apply -k` runs as
 * a user would run it.
 */
function overlayIn(name: 'dev' | 'ha', ns: string): string {
  const dir = mkdtempSync(join(scratch, 'kustomization-'));
  const overlay = relative(dir, join(REPO, 'deploy/overlays', name));
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    ['apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization', `namespace: ${ns}`, 'resources:', `  - ${overlay}`, ''].join('\n'),
  );
  return dir;
}

describe('Containerfile', () => {
  const lines = readFileSync(join(REPO, 'Containerfile'), 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  /** the stages, each a list of its instructions, the FROM line first (the ARGs before the first FROM go first) */
  const stages = lines.reduce<string[][]>((acc, l) => (/^FROM\s/i.test(l) ? [...acc, [l]] : (acc.at(-1)!.push(l), acc)), [[]]);
  const runtime = stages.at(-1)!;
  const build = stages.find((s) => /\sAS build$/i.test(s[0]!)) ?? [];
  /** the source paths of the COPY instructions that read the build context */
  const copiesOf = (stage: string[]) =>
    stage
      .filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))
      .map((l) => l.split(/\s+/).slice(1, -1))
      .flat();
  const copies = copiesOf(lines);

  it('copies only paths that exist in the repository, and every path the ignore files let through', () => {
    expect(copies.sort()).toEqual(
      ['bin', 'migrations', 'package-lock.json', 'package-lock.json', 'package.json', 'package.json', 'package.json', 'scripts/build.mjs', 'sdk/src', 'src', 'tsconfig.build.json', 'tsconfig.json'],
    );
    for (const path of copies) expect(existsSync(join(REPO, path)), path).toBe(true);
    for (const ignore of ['.containerignore', '.dockerignore']) {
      const rules = readFileSync(join(REPO, ignore), 'utf8').split('\n');
      expect(rules, ignore).toContain('*');
      for (const path of new Set(copies)) expect(rules, `${ignore} lets ${path} into the build context`).toContain(`!${path}`);
    }
  });

  it('builds dist/ in a build stage; the runtime stage carries dist/ and no sources, TypeScript or tsx', () => {
    expect(build.some((l) => /^RUN npm ci(?!.*--omit=dev)/.test(l)), 'the build stage installs the development dependencies').toBe(true);
    expect(build).toContain('RUN node scripts/build.mjs');
    expect(copiesOf(build)).toContain('src');
    // the CLI's client commands import the SDK's sources, compiled beside src/ into dist/sdk/src
    expect(copiesOf(build)).toContain('sdk/src');
    expect(runtime).toContain('COPY --from=build /app/dist ./dist');
    expect(copiesOf(runtime).sort()).toEqual(['bin', 'migrations', 'package.json']);
    // npm ci --omit=dev: what runs the compiled code and the store must be runtime dependencies,
    // and nothing that compiles TypeScript is one.
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const dep of ['better-sqlite3', '@kubernetes/client-node']) expect(pkg.dependencies, dep).toHaveProperty(dep);
    for (const dep of ['tsx', 'typescript']) expect(pkg.dependencies, dep).not.toHaveProperty(dep);
    expect(lines.some((l) => l.startsWith('RUN npm ci --omit=dev'))).toBe(true);
  });

  it('carries what the CLI reads relative to its own files, and runs it as a non-root user', () => {
    // bin/fanout.js imports ../dist/src/cli/index.js (the sources only when src/ is beside it);
    // the store applies <package root>/migrations (per dialect), the root found from the module's
    // own directory (src/package-root.ts), so from dist/src/store/… too.
    const bin = readFileSync(join(REPO, 'bin/fanout.js'), 'utf8');
    expect(bin).toContain("await import('../dist/src/cli/index.js')");
    const storeFiles = readdirSync(join(REPO, 'src/store'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    expect(storeFiles.filter((f) => readFileSync(join(REPO, 'src/store', f), 'utf8').includes("path.join(packageRoot, 'migrations'"))).not.toEqual([]);
    expect(copiesOf(runtime)).toContain('migrations');
    expect(runtime.some((l) => /^ENTRYPOINT\s.*"node", "\/app\/bin\/fanout\.js"\]$/.test(l))).toBe(true);
    expect(runtime).toContain('WORKDIR /app');
    expect(runtime.find((l) => /^USER\s/.test(l))).toMatch(/^USER 10001(:10001)?$/);
    expect(runtime).toContain('VOLUME ["/data"]');
  });
});

describe('deploy/ manifests', () => {
  it('every Fanout process stops by itself before Kubernetes would SIGKILL it', () => {
    // FANOUT_SHUTDOWN_GRACE_SECONDS (default 20) plus up to 5 s of a statement blocked on a locked
    // SQLite file (busy_timeout) must fit in terminationGracePeriodSeconds (default 30).
    const fanout = [...base, ...dev, ...ha].filter((d) => d.kind === 'Deployment' && d.metadata.name.startsWith('fanout-'));
    expect(fanout.length).toBeGreaterThanOrEqual(6);
    for (const d of fanout) {
      const pod = d.spec.template.spec;
      for (const c of pod.containers) {
        const grace = Number(c.env?.find((e: { name: string }) => e.name === 'FANOUT_SHUTDOWN_GRACE_SECONDS')?.value ?? 20);
        expect(grace + 5, `${d.metadata.name}/${c.name}`).toBeLessThanOrEqual(pod.terminationGracePeriodSeconds ?? 30);
      }
    }
  });

  it('every rendered document matches the live API server OpenAPI v3 schemas', () => {
    const errors = [...base, ...dev, ...ha].flatMap((d) => validator.validateManifest(d));
    expect(errors).toEqual([]);
    expect(base.length).toBeGreaterThanOrEqual(10);
    expect(ha.length).toBeGreaterThanOrEqual(13);
  });

  it('base: namespace-agnostic, the parts the design names, resources and a restricted securityContext on every container', () => {
    expect(base.filter((d) => d.metadata.namespace)).toEqual([]);
    // generated ConfigMaps and Secrets get a content-hash suffix
    const name = (d: Doc) => (d.kind === 'ConfigMap' || d.kind === 'Secret' ? d.metadata.name.replace(/-[a-z0-9]{10}$/, '') : d.metadata.name);
    expect(base.map((d) => `${d.kind}/${name(d)}`).sort()).toEqual([
      'ConfigMap/fanout-config',
      'Deployment/fanout-api',
      'Deployment/fanout-dispatcher',
      'Deployment/redis',
      'PersistentVolumeClaim/fanout-data',
      'Role/fanout',
      'RoleBinding/fanout',
      'Service/fanout-api',
      'Service/redis',
      'ServiceAccount/fanout',
    ]);
    for (const d of [...base, ...dev, ...ha].filter((x) => x.kind === 'Deployment')) {
      const pod = podSpec(d);
      expect(pod.securityContext, d.metadata.name).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      for (const c of pod.containers) {
        const where = `${d.metadata.name}/${c.name}`;
        expect(c.resources?.requests?.cpu, where).toBeTruthy();
        expect(c.resources?.requests?.memory, where).toBeTruthy();
        expect(c.resources?.limits?.memory, where).toBeTruthy();
        expect(c.securityContext, where).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      }
    }
    const pvc = find(base, 'PersistentVolumeClaim', 'fanout-data');
    expect(pvc.spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } });
  });

  it('the Role lists exactly the grants the runtimes need, bound to the fanout ServiceAccount', () => {
    const role = find(base, 'Role', 'fanout');
    const granted: Record<string, string[]> = {};
    for (const rule of role.rules as Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>) {
      for (const g of rule.apiGroups) for (const r of rule.resources) granted[`${g}/${r}`] = [...(granted[`${g}/${r}`] ?? []), ...rule.verbs].sort();
    }
    expect(granted).toEqual(Object.fromEntries(Object.entries(GRANTS).map(([k, v]) => [k, [...v].sort()])));
    const binding = find(base, 'RoleBinding', 'fanout');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'fanout' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'fanout' }]);
  });

  // The KEDA CRDs are not in the suite's control plane: the example is checked as text, and kept
  // out of every kustomization so that nothing above tries to validate or apply it.
  it('the KEDA example scales the dev worker Deployment on the backlog of exactly its tasks', () => {
    const file = 'deploy/examples/keda-worker-scaledobject.yaml';
    const docs = parseAllDocuments(readFileSync(join(REPO, file), 'utf8')).map((d) => d.toJS() as Doc);
    expect(docs.map((d) => `${d.apiVersion} ${d.kind}`)).toEqual(['keda.sh/v1alpha1 ScaledObject']);
    const scaled = docs[0]!;
    const worker = find(dev, 'Deployment', 'fanout-worker');
    expect(scaled.spec.scaleTargetRef).toEqual({ name: worker.metadata.name });
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(scaled.spec.maxReplicaCount).toBeGreaterThan(scaled.spec.minReplicaCount);
    const [trigger] = scaled.spec.triggers as Array<{ type: string; metadata: Record<string, string> }>;
    expect(trigger!.type).toBe('prometheus');
    const workerArgs: string[] = container(worker).args;
    const tasks = workerArgs.flatMap((a, i) => (workerArgs[i - 1] === '--task' ? [a.split('=')[0]] : []));
    expect(trigger!.metadata.query).toBe(`sum(max by (task) (fanout_queue_backlog{task=~"${tasks.join('|')}"}))`);
    expect(Number(trigger!.metadata.threshold)).toBeGreaterThan(0);
    for (const value of Object.values(trigger!.metadata)) expect(typeof value, 'KEDA trigger metadata values are strings').toBe('string');
    for (const dir of ['deploy/base', 'deploy/overlays/dev']) expect(readFileSync(join(REPO, dir, 'kustomization.yaml'), 'utf8')).not.toContain('examples');
  });

  it('API: `fanout api` on 8080 behind Service fanout-api, ready on /readyz, live on /healthz', () => {
    const api = find(base, 'Deployment', 'fanout-api');
    const c = container(api);
    expect(c.args).toEqual(['api']);
    expect(c.image).toBe('fanout:latest');
    expect(c.ports).toEqual([{ name: 'http', containerPort: 8080 }]);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(podSpec(api).serviceAccountName).toBe('fanout');
    const env = Object.fromEntries(c.env.map((e: { name: string }) => [e.name, e]));
    expect(env.FANOUT_API_KEY.valueFrom.secretKeyRef).toEqual({ name: 'fanout-api-key', key: 'api-key', optional: true });
    const svc = find(base, 'Service', 'fanout-api');
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http' }]);
    expect(svc.spec.selector).toEqual(api.spec.selector.matchLabels);
  });

  it('dispatcher: one replica, Recreate; it and the API share the SQLite volume on one node', () => {
    const dispatcher = find(base, 'Deployment', 'fanout-dispatcher');
    expect(dispatcher.spec.replicas).toBe(1);
    expect(dispatcher.spec.strategy).toEqual({ type: 'Recreate' });
    expect(container(dispatcher).args).toEqual(['dispatcher']);
    expect(podSpec(dispatcher).serviceAccountName).toBe('fanout');
    for (const d of [dispatcher, find(base, 'Deployment', 'fanout-api')]) {
      const pod = podSpec(d);
      expect(pod.volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: 'fanout-data' } });
      expect(container(d).volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
      const [term, ...more] = pod.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution;
      expect(more).toEqual([]);
      expect(term.topologyKey).toBe('kubernetes.io/hostname');
      // the term matches the pod's own labels: the first of the two may start anywhere
      for (const [k, v] of Object.entries(term.labelSelector.matchLabels)) expect(d.spec.template.metadata.labels[k], d.metadata.name).toBe(v);
    }
  });

  it('the environment the containers get is a valid Fanout configuration, with the Kubernetes knobs set', () => {
    const ns = 'fanout-dev';
    const configMap = find(dev, 'ConfigMap', 'fanout-config');
    const secret = find(dev, 'Secret', 'fanout-api-key');
    /** The variables the kubelet would set, resolved from the rendered objects. */
    const envOf = (d: Doc): Record<string, string> => {
      const c = container(d);
      const env: Record<string, string> = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };
      for (const from of c.envFrom ?? []) {
        expect(from.configMapRef.name).toBe(configMap.metadata.name);
        Object.assign(env, configMap.data);
      }
      for (const e of c.env ?? []) {
        // $(VAR) refers to a variable defined before it, as the kubelet expands it
        if (e.value !== undefined) env[e.name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref: string, v: string) => env[v] ?? ref);
        else if (e.valueFrom.fieldRef) env[e.name] = e.valueFrom.fieldRef.fieldPath === 'metadata.namespace' ? ns : '?';
        else if (e.valueFrom.secretKeyRef) {
          expect(e.valueFrom.secretKeyRef.name).toBe(secret.metadata.name);
          env[e.name] = Buffer.from(secret.data[e.valueFrom.secretKeyRef.key], 'base64').toString('utf8');
        }
      }
      return env;
    };
    const program = buildProgram();
    for (const d of dev.filter((x) => x.kind === 'Deployment' && x.metadata.name.startsWith('fanout-'))) {
      const [command, ...args] = container(d).args as string[];
      const sub = program.commands.find((c) => c.name() === command);
      expect(sub, `${d.metadata.name} runs \`fanout ${command}\``).toBeDefined();
      for (const flag of args.filter((a) => a.startsWith('--'))) expect(sub!.options.map((o) => o.long), `fanout ${command} ${flag}`).toContain(flag);
    }

    const api = loadConfig({}, envOf(find(dev, 'Deployment', 'fanout-api')));
    expect(api).toMatchObject({ host: '0.0.0.0', port: 8080, database: { kind: 'sqlite', file: '/data/fanout.db' }, dataDir: '/data', redisUrl: 'redis://redis:6379', apiKey: 'dev-key' });
    // batch pods may run in other allowed namespaces: they reach the API and Redis by namespaced names
    expect(api.kubernetes).toMatchObject({ namespace: ns, publicUrl: `http://fanout-api.${ns}.svc:8080`, redisUrl: `redis://redis.${ns}.svc:6379`, kubeconfig: undefined });
    const dispatcher = loadConfig({}, envOf(find(dev, 'Deployment', 'fanout-dispatcher')));
    expect(dispatcher).toMatchObject({ database: { kind: 'sqlite', file: '/data/fanout.db' }, redisUrl: 'redis://redis:6379' });
    expect(dispatcher.kubernetes).toMatchObject({ namespace: ns, publicUrl: `http://fanout-api.${ns}.svc:8080`, redisUrl: `redis://redis.${ns}.svc:6379` });
    const worker = loadConfig({}, envOf(find(dev, 'Deployment', 'fanout-worker')));
    expect(worker).toMatchObject({ redisUrl: 'redis://redis:6379', apiUrl: 'http://fanout-api:8080', kubernetes: undefined });
    expect(container(find(dev, 'Deployment', 'fanout-api')).image).toBe('fanout:dev');
  });
});

/** Does a label selector (matchLabels only, as every selector in deploy/ is) match these labels? */
function selects(selector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] }, labels: Record<string, string>): boolean {
  if (selector.matchExpressions?.length) throw new Error('selects(): matchExpressions are not handled');
  const wanted = Object.entries(selector.matchLabels ?? {});
  return wanted.length > 0 && wanted.every(([k, v]) => labels[k] === v);
}

type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } };
const envOfContainer = (c: { env?: EnvVar[] }): Record<string, EnvVar> => Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));

/** The Secrets (name → keys) the containers of these Deployments need to start: every secretKeyRef not marked optional. */
function requiredSecretKeys(deployments: Doc[]): Record<string, string[]> {
  const keys: Record<string, Set<string>> = {};
  for (const d of deployments) {
    for (const c of podSpec(d).containers as Array<{ env?: EnvVar[] }>) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref && !ref.optional) (keys[ref.name] ??= new Set()).add(ref.key);
      }
    }
  }
  return Object.fromEntries(Object.entries(keys).map(([name, set]) => [name, [...set].sort()]));
}

const readExample = (file: string): Doc[] => parseAllDocuments(readFileSync(join(REPO, 'deploy/examples', file), 'utf8')).map((d) => d.toJS() as Doc);

describe('deploy/overlays/ha', () => {
  const deployment = (name: string) => find(ha, 'Deployment', name);
  /** the Deployments whose processes open the store */
  const storeUsers = () => [deployment('fanout-api'), deployment('fanout-dispatcher')];
  const fanoutDeployments = () => ha.filter((d) => d.kind === 'Deployment' && d.metadata.name.startsWith('fanout-'));

  it('renders the base without its PVC, the example workers and two PodDisruptionBudgets, no Secret', () => {
    const name = (d: Doc) => (d.kind === 'ConfigMap' ? d.metadata.name.replace(/-[a-z0-9]{10}$/, '') : d.metadata.name);
    expect(ha.map((d) => `${d.kind}/${name(d)}`).sort()).toEqual([
      'ConfigMap/fanout-config',
      'Deployment/fanout-api',
      'Deployment/fanout-dispatcher',
      'Deployment/fanout-worker',
      'Deployment/redis',
      'Namespace/fanout',
      'PodDisruptionBudget/fanout-api',
      'PodDisruptionBudget/fanout-dispatcher',
      'Role/fanout',
      'RoleBinding/fanout',
      'Service/fanout-api',
      'Service/redis',
      'ServiceAccount/fanout',
    ]);
    expect(ha.filter((d) => d.kind !== 'Namespace' && d.metadata.namespace !== 'fanout').map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([]);
  });

  it('3 API replicas, 2 dispatchers (a rolling update starts the new standby first), the dev overlay\'s worker Deployment', () => {
    expect(deployment('fanout-api').spec.replicas).toBe(3);
    expect(container(deployment('fanout-api')).args).toEqual(['api']);
    const dispatcher = deployment('fanout-dispatcher');
    expect(dispatcher.spec.replicas).toBe(2);
    expect(container(dispatcher).args).toEqual(['dispatcher']);
    expect(dispatcher.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    // the same worker as the dev overlay, but for its namespace and image tag
    const normalized = (d: Doc) => {
      const copy = structuredClone(d);
      delete copy.metadata.namespace;
      for (const c of podSpec(copy).containers) c.image = c.image.replace(/:.*$/, '');
      return copy;
    };
    expect(normalized(deployment('fanout-worker'))).toEqual(normalized(find(dev, 'Deployment', 'fanout-worker')));
  });

  it('spreads the API and the dispatchers over nodes, and no pod is pinned to another pod\'s node', () => {
    for (const d of storeUsers()) {
      const where = d.metadata.name;
      // hostname only: every node has it. A key some nodes lack (a zone label) makes the scheduler
      // leave those nodes out of spread scoring, the hostname spread included.
      expect((podSpec(d).topologySpreadConstraints ?? []).map((t: { topologyKey: string }) => t.topologyKey), where).toEqual(['kubernetes.io/hostname']);
      const hostSpread = podSpec(d).topologySpreadConstraints[0];
      expect(hostSpread, where).toMatchObject({ maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway', matchLabelKeys: ['pod-template-hash'] });
      // the constraint counts the Deployment's own pods
      expect(hostSpread.labelSelector, where).toEqual(d.spec.selector);
      expect(selects(hostSpread.labelSelector, d.spec.template.metadata.labels), where).toBe(true);
    }
    for (const d of ha.filter((x) => x.kind === 'Deployment')) {
      expect(podSpec(d).affinity?.podAffinity, d.metadata.name).toBeUndefined();
      expect(d.spec.template.metadata.labels, d.metadata.name).not.toHaveProperty('fanout.dev/volume');
    }
  });

  it('a PodDisruptionBudget keeps 2 API replicas and lets 1 dispatcher go; each selects the pods of its Deployment and no other', () => {
    const api = find(ha, 'PodDisruptionBudget', 'fanout-api');
    const dispatcher = find(ha, 'PodDisruptionBudget', 'fanout-dispatcher');
    expect(api.spec).toMatchObject({ minAvailable: 2, unhealthyPodEvictionPolicy: 'AlwaysAllow' });
    expect(api.spec.maxUnavailable).toBeUndefined();
    expect(dispatcher.spec).toMatchObject({ maxUnavailable: 1, unhealthyPodEvictionPolicy: 'AlwaysAllow' });
    expect(dispatcher.spec.minAvailable).toBeUndefined();
    // a drain can still evict one API replica at full strength
    expect(api.spec.minAvailable).toBeLessThan(deployment('fanout-api').spec.replicas);
    for (const pdb of [api, dispatcher]) {
      const selected = ha.filter((d) => d.kind === 'Deployment' && selects(pdb.spec.selector, d.spec.template.metadata.labels)).map((d) => d.metadata.name);
      expect(selected, pdb.metadata.name).toEqual([pdb.metadata.name]);
    }
  });

  it('the API and the dispatcher read DATABASE_URL and the S3 keys from Secrets; no ConfigMap holds them, workers get none', () => {
    for (const cm of ha.filter((d) => d.kind === 'ConfigMap')) {
      for (const key of ['DATABASE_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) expect(cm.data, `${cm.metadata.name} ${key}`).not.toHaveProperty(key);
    }
    for (const d of storeUsers()) {
      expect(podSpec(d).initContainers, d.metadata.name).toBeUndefined();
      for (const c of podSpec(d).containers) {
        const where = `${d.metadata.name}/${c.name}`;
        const env = envOfContainer(c);
        // required (no `optional`): without the database the pod must not start at all
        expect(env.DATABASE_URL, where).toEqual({ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'fanout-db-app', key: 'uri' } } });
        expect(env.AWS_ACCESS_KEY_ID?.valueFrom?.secretKeyRef, where).toEqual({ name: 'fanout-s3', key: 'access-key-id' });
        expect(env.AWS_SECRET_ACCESS_KEY?.valueFrom?.secretKeyRef, where).toEqual({ name: 'fanout-s3', key: 'secret-access-key' });
        // nothing else brings a second DATABASE_URL in
        for (const from of c.envFrom ?? []) expect(Object.keys(from), where).toEqual(['configMapRef']);
      }
    }
    const worker = container(deployment('fanout-worker'));
    expect(Object.keys(envOfContainer(worker))).not.toContain('DATABASE_URL');
    expect(worker.envFrom).toBeUndefined();
  });

  it('mounts no SQLite volume: no PersistentVolumeClaim, only emptyDir volumes, nothing at /data in a Fanout pod', () => {
    expect(ha.filter((d) => d.kind === 'PersistentVolumeClaim')).toEqual([]);
    for (const d of ha.filter((x) => x.kind === 'Deployment')) {
      for (const v of podSpec(d).volumes ?? []) expect(Object.keys(v).sort(), `${d.metadata.name} volume ${v.name}`).toEqual(['emptyDir', 'name']);
    }
    for (const d of fanoutDeployments()) {
      for (const c of podSpec(d).containers) {
        expect((c.volumeMounts ?? []).map((m: { mountPath: string }) => m.mountPath), `${d.metadata.name}/${c.name}`).toEqual(['/tmp']);
      }
    }
    // the data directory (scratch only) lies in the writable /tmp emptyDir: the root filesystem is read-only
    expect(find(ha, 'ConfigMap', 'fanout-config').data.FANOUT_DATA_DIR).toMatch(/^\/tmp\//);
  });

  it('results go to object storage: FANOUT_BLOB_URL is an s3:// URL in the settings the API and the dispatcher read', () => {
    const cm = find(ha, 'ConfigMap', 'fanout-config');
    expect(cm.data.FANOUT_BLOB_URL).toMatch(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/\S+)?$/);
    expect(cm.data.AWS_REGION).toMatch(/^[a-z]{2}(-[a-z]+)+-\d$/);
    for (const d of storeUsers()) expect(container(d).envFrom, d.metadata.name).toEqual([{ configMapRef: { name: cm.metadata.name } }]);
  });

  it('readiness probes ask /readyz: the API\'s (liveness /healthz), and any other Fanout container\'s', () => {
    const api = container(deployment('fanout-api'));
    expect(api.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(api.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(api.ports).toContainEqual({ name: 'http', containerPort: 8080 });
    const probes = fanoutDeployments().flatMap((d) => podSpec(d).containers.filter((c: { readinessProbe?: unknown }) => c.readinessProbe));
    expect(probes.length).toBeGreaterThanOrEqual(1);
    for (const c of probes) expect(c.readinessProbe.httpGet?.path, c.name).toBe('/readyz');
    // the Service sends requests to the API pods only
    expect(selects({ matchLabels: find(ha, 'Service', 'fanout-api').spec.selector }, deployment('fanout-api').spec.template.metadata.labels)).toBe(true);
  });

  // The CloudNativePG CRDs are not in the suite's control plane: the example is checked as data.
  it('examples/cloudnative-pg-cluster.yaml: a Cluster of 3 instances whose <name>-app Secret (key uri) is the overlay\'s DATABASE_URL', () => {
    const docs = readExample('cloudnative-pg-cluster.yaml');
    expect(docs.map((d) => `${d.apiVersion} ${d.kind}`)).toEqual(['postgresql.cnpg.io/v1 Cluster']);
    const cluster = docs[0]!;
    expect(cluster.metadata.namespace, 'applied into Fanout\'s namespace, where the Secret must be').toBeUndefined();
    expect(cluster.spec.instances).toBe(3);
    const ref = envOfContainer(container(deployment('fanout-api'))).DATABASE_URL!.valueFrom!.secretKeyRef!;
    expect({ name: `${cluster.metadata.name}-app`, key: 'uri' }).toEqual({ name: ref.name, key: ref.key });
    expect(cluster.spec.bootstrap.initdb).toEqual({ database: expect.stringMatching(/^[a-z_][a-z0-9_]*$/), owner: expect.stringMatching(/^[a-z_][a-z0-9_]*$/) });
    expect(cluster.spec.affinity).toMatchObject({ enablePodAntiAffinity: true, topologyKey: 'kubernetes.io/hostname' });
    expect(validator.validateManifest({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'size' }, spec: { resources: { requests: { storage: cluster.spec.storage.size } } } })).toEqual([]);
    // Cluster spec fields of CloudNativePG's API reference only (a misspelt one would be dropped by the operator)
    expect(Object.keys(cluster.spec).filter((k) => !['instances', 'bootstrap', 'postgresql', 'affinity', 'storage', 'resources', 'backup', 'imageName', 'primaryUpdateStrategy', 'monitoring'].includes(k))).toEqual([]);
    // the connection pools fit, a rolling update's surge pods (maxSurge 1 each) included, with room for psql and backups
    const pool = Number(find(ha, 'ConfigMap', 'fanout-config').data.FANOUT_DB_POOL_SIZE);
    const processes = storeUsers().reduce((n, d) => n + d.spec.replicas + (d.spec.strategy.rollingUpdate?.maxSurge ?? 0), 0);
    expect(pool).toBeGreaterThan(0);
    expect(processes * pool).toBeLessThanOrEqual(Number(cluster.spec.postgresql.parameters.max_connections) - 20);
  });

  it('examples/ha-secrets.yaml: exactly the Secrets and keys the overlay needs, every value a marked placeholder', () => {
    const docs = readExample('ha-secrets.yaml');
    expect(docs.map((d) => `${d.apiVersion} ${d.kind}`)).toEqual(docs.map(() => 'v1 Secret'));
    expect(Object.fromEntries(docs.map((d) => [d.metadata.name, Object.keys(d.stringData).sort()]))).toEqual(requiredSecretKeys(fanoutDeployments()));
    for (const d of docs) {
      expect(d.data, d.metadata.name).toBeUndefined();
      for (const [key, value] of Object.entries(d.stringData as Record<string, string>)) expect(value, `${d.metadata.name} ${key}`).toContain('REPLACE_ME');
    }
    expect(docs.find((d) => d.metadata.name === 'fanout-db-app')!.stringData.uri).toMatch(/^postgres:\/\/[^:]+:REPLACE_ME@[^/]+:5432\/\w+\?sslmode=require$/);
  });
});

describe('the validator and the API server agree on bad manifests', () => {
  const apiDeployment = (): Doc => structuredClone(find(base, 'Deployment', 'fanout-api'));

  it('a misspelled field fails validation and the Strict server dry run', async () => {
    const ns = await freshNamespace('deploy-bad');
    const bad = apiDeployment();
    container(bad).imagePullPolcy = 'Always';
    bad.spec.replica = 2;
    expect(validator.validateManifest(bad)).toEqual([
      'Deployment fanout-api: /spec: unknown field "replica"',
      'Deployment fanout-api: /spec/template/spec/containers/0: unknown field "imagePullPolcy"',
    ]);
    const r = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-n', ns, '-f', '-'], JSON.stringify(bad));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown field "spec\.replica"/);
    expect(r.stderr).toMatch(/unknown field "spec\.template\.spec\.containers\[0\]\.imagePullPolcy"/);
  });

  it('a bad quantity fails validation and the server', async () => {
    const ns = await freshNamespace('deploy-bad');
    const bad = apiDeployment();
    container(bad).resources.limits.memory = '1 Gi';
    const pvc = structuredClone(find(base, 'PersistentVolumeClaim', 'fanout-data'));
    pvc.spec.resources.requests.storage = '1GB';
    expect(validator.validateManifest(bad)).toEqual(['Deployment fanout-api: /spec/template/spec/containers/0/resources/limits/memory: must be a quantity, got "1 Gi"']);
    expect(validator.validateManifest(pvc)).toEqual(['PersistentVolumeClaim fanout-data: /spec/resources/requests/storage: must be a quantity, got "1GB"']);
    for (const doc of [bad, pvc]) {
      const r = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-n', ns, '-f', '-'], JSON.stringify(doc));
      expect(r.code, r.stdout).not.toBe(0);
      expect(r.stderr).toMatch(/quantities must match the regular expression/);
    }
  });

  it('a valid manifest with a wrong type, a bad enum or a duplicate list key also fails validation', () => {
    const bad = apiDeployment();
    container(bad).ports[0].containerPort = '8080';
    container(bad).imagePullPolicy = 'Sometimes';
    container(bad).env.push({ name: 'HOST', value: '127.0.0.1' });
    expect(validator.validateManifest(bad)).toEqual([
      'Deployment fanout-api: /spec/template/spec/containers/0/env: duplicate entry with name = "HOST"',
      'Deployment fanout-api: /spec/template/spec/containers/0/imagePullPolicy: must be equal to one of the allowed values: ["Always","IfNotPresent","Never"], got "Sometimes"',
      'Deployment fanout-api: /spec/template/spec/containers/0/ports/0/containerPort: must be integer, got "8080"',
    ]);
    expect(validator.validateManifest({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: {} })[0]).toMatch(/metadata\/name is required/);
    expect(validator.validateManifest({ apiVersion: 'apps/v2', kind: 'Deployment', metadata: { name: 'x' } })).toEqual([
      'Deployment x: no schema for apps/v2 Deployment in the loaded group versions',
    ]);
  });
});

/**
 * kubectl's warnings, less the one about the namespace the test created itself (apply patches
 * in the last-applied annotation the first time).
 */
function warnings(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => /warning/i.test(l))
    .filter((l) => !/^Warning: resource namespaces\/\S+ is missing the kubectl.kubernetes.io\/last-applied-configuration annotation/.test(l));
}

describe('deploy/ on the cluster', () => {
  let ns: string;

  beforeAll(async () => {
    ns = await freshNamespace('fanout-deploy');
  });

  it('base and the dev overlay pass a server-side dry run with fieldValidation=Strict', async () => {
    const baseRun = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-n', ns, '-k', 'deploy/base']);
    expect(baseRun.code, baseRun.stderr).toBe(0);
    expect(baseRun.stdout.trim().split('\n')).toHaveLength(base.length);
    const devRun = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-k', overlayIn('dev', ns)]);
    expect(devRun.code, devRun.stderr).toBe(0);
    expect(devRun.stdout.trim().split('\n')).toHaveLength(dev.length);
    expect(warnings(baseRun.stderr + devRun.stderr)).toEqual([]);
  });

  it('kubectl apply -k: the deployment controller creates every Deployment its ReplicaSet and Pods', async () => {
    const run = await kubectl(['apply', '--validate=strict', '-k', overlayIn('dev', ns)]);
    expect(run.code, run.stderr).toBe(0);
    // The Namespace is applied first with warn=restricted: a pod template that Pod Security
    // "restricted" would refuse draws a warning on its Deployment. (It enforces only baseline,
    // for the batch pods that run template images as root.)
    expect(warnings(run.stderr)).toEqual([]);
    const namespace = await kubeRequest(conn, 'GET', `/api/v1/namespaces/${ns}`);
    expect(namespace.body.metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/warn': 'restricted' });
    // …and that warning is not idle: the same Deployment without its pod securityContext draws one
    const loose = structuredClone(find(base, 'Deployment', 'redis'));
    delete podSpec(loose).securityContext;
    const looseRun = await kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], JSON.stringify(loose));
    expect(looseRun.stderr).toMatch(/would violate PodSecurity "restricted:latest"/);

    const deployments = dev.filter((d) => d.kind === 'Deployment').map((d) => d.metadata.name);
    expect(deployments.sort()).toEqual(['fanout-api', 'fanout-dispatcher', 'fanout-worker', 'redis']);
    const list = async (path: string) => (await kubeRequest(conn, 'GET', `/apis/${path}`)).body.items as Doc[];
    const owned = (items: Doc[], kind: string, name: string) =>
      items.filter((i) => (i.metadata as { ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }> }).ownerReferences?.some((o) => o.kind === kind && o.name === name && o.controller));
    await waitFor(
      async () => {
        const replicaSets = await list(`apps/v1/namespaces/${ns}/replicasets`);
        const pods = (await kubeRequest(conn, 'GET', `/api/v1/namespaces/${ns}/pods`)).body.items as Doc[];
        return deployments.every((name) => {
          const rs = owned(replicaSets, 'Deployment', name);
          // Pods exist only once admission (Pod Security, ServiceAccount) accepted them
          return rs.length === 1 && owned(pods, 'ReplicaSet', rs[0].metadata.name).length === 1;
        });
      },
      {
        what: `a ReplicaSet and a Pod for each of ${deployments.join(', ')} in ${ns}`,
        timeoutMs: 60_000,
        describe: async () => {
          const rs = await list(`apps/v1/namespaces/${ns}/replicasets`);
          return `replicasets: ${JSON.stringify(rs.map((r) => [r.metadata.name, r.status]))}\n${await describePods(ns)}`;
        },
      },
    );
    const pods = (await kubeRequest(conn, 'GET', `/api/v1/namespaces/${ns}/pods`)).body.items as Doc[];
    const byComponent = (c: string) => pods.find((p) => p.metadata.labels?.['app.kubernetes.io/component'] === c)!;
    expect(byComponent('api').spec.serviceAccountName).toBe('fanout');
    expect(byComponent('dispatcher').spec.serviceAccountName).toBe('fanout');
    expect(byComponent('worker').spec.automountServiceAccountToken).toBe(false);
    expect(byComponent('api').spec.containers[0].env.find((e: { name: string }) => e.name === 'FANOUT_API_KEY').valueFrom.secretKeyRef.name).toMatch(/^fanout-api-key-/);

    // What the server stores and answers (defaults, status, managedFields) also validates: no false alarms.
    // List items carry no apiVersion/kind: set them from the list.
    const typed = (items: Doc[], apiVersion: string, kind: string) => items.map((i) => ({ ...i, apiVersion, kind }));
    const live = [
      ...typed(await list(`apps/v1/namespaces/${ns}/deployments`), 'apps/v1', 'Deployment'),
      ...typed(await list(`apps/v1/namespaces/${ns}/replicasets`), 'apps/v1', 'ReplicaSet'),
      ...typed(pods, 'v1', 'Pod'),
      ...typed((await kubeRequest(conn, 'GET', `/api/v1/namespaces/${ns}/services`)).body.items, 'v1', 'Service'),
    ];
    const errors = live.flatMap((d) => validator.validateManifest(d));
    expect(errors).toEqual([]);
  });

  it('the fanout ServiceAccount can do exactly what the Role lists, in its own namespace only', async () => {
    const user = `system:serviceaccount:${ns}:fanout`;
    const groups = ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'];
    const review = async (attrs: Record<string, string>) => {
      const res = await kubeRequest(conn, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: { user, groups, resourceAttributes: attrs },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body.status.allowed === true;
    };
    const resources = [
      ...Object.keys(GRANTS),
      'batch/jobs/status',
      'batch/cronjobs',
      '/pods/log',
      '/pods/exec',
      '/pods/eviction',
      '/configmaps',
      '/serviceaccounts',
      '/serviceaccounts/token',
      '/persistentvolumeclaims',
      '/events',
      'apps/deployments',
      'rbac.authorization.k8s.io/roles',
      'rbac.authorization.k8s.io/rolebindings',
    ];
    const verbs = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
    const cases = resources.flatMap((r) => verbs.map((verb) => ({ r, verb })));
    const answers = await Promise.all(
      cases.map(async ({ r, verb }) => {
        const [group, resource, subresource] = r.split('/');
        const allowed = await review({ namespace: ns, verb, group, resource, ...(subresource ? { subresource } : {}) });
        return { r, verb, allowed };
      }),
    );
    const allowed = answers.filter((a) => a.allowed).map((a) => `${a.verb} ${a.r}`).sort();
    const expected = Object.entries(GRANTS).flatMap(([r, vs]) => vs.map((v) => `${v} ${r}`)).sort();
    expect(allowed).toEqual(expected);
    // nothing outside its namespace, nothing cluster-wide
    expect(await review({ namespace: 'default', verb: 'create', group: 'batch', resource: 'jobs' })).toBe(false);
    expect(await review({ verb: 'list', group: 'batch', resource: 'jobs' })).toBe(false);
    expect(await review({ verb: 'list', group: '', resource: 'namespaces' })).toBe(false);
  });

  it('with its own token (TokenRequest), the ServiceAccount creates a Job and is refused a Deployment and a pod deletion', async () => {
    const tokenRun = await kubectl(['create', 'token', 'fanout', '-n', ns, '--duration=10m']);
    expect(tokenRun.code, tokenRun.stderr).toBe(0);
    const asFanout: KubeConnection = { ...conn, token: tokenRun.stdout.trim() };
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'rbac-probe' },
      spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] } } },
    };
    const created = await kubeRequest(asFanout, 'POST', `/apis/batch/v1/namespaces/${ns}/jobs?dryRun=All&fieldValidation=Strict`, job);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const secret = await kubeRequest(asFanout, 'POST', `/api/v1/namespaces/${ns}/secrets?dryRun=All`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'fanout-b-probe' }, stringData: { token: 'x' } });
    expect(secret.status, JSON.stringify(secret.body)).toBe(201);
    const deployment = await kubeRequest(asFanout, 'POST', `/apis/apps/v1/namespaces/${ns}/deployments?dryRun=All`, find(base, 'Deployment', 'redis'));
    expect(deployment.status).toBe(403);
    const pods = await kubeRequest(asFanout, 'GET', `/api/v1/namespaces/${ns}/pods`);
    expect(pods.status).toBe(200);
    const victim = (pods.body.items as Doc[])[0];
    expect(victim).toBeDefined();
    const del = await kubeRequest(asFanout, 'DELETE', `/api/v1/namespaces/${ns}/pods/${victim.metadata.name}?dryRun=All`);
    expect(del.status).toBe(403);
    const secrets = await kubeRequest(asFanout, 'GET', `/api/v1/namespaces/${ns}/secrets`);
    expect(secrets.status).toBe(403);
    const elsewhere = await kubeRequest(asFanout, 'GET', '/apis/batch/v1/namespaces/default/jobs');
    expect(elsewhere.status).toBe(403);
  });
});

describe('deploy/overlays/ha on the cluster', () => {
  it('passes a server-side dry run with fieldValidation=Strict, with no Pod Security warning', async () => {
    const ns = await freshNamespace('fanout-ha');
    const run = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-k', overlayIn('ha', ns)]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim().split('\n')).toHaveLength(ha.length);
    expect(warnings(run.stderr)).toEqual([]);
  });

  it('applied (with the example Secrets): 3 API and 2 dispatcher pods, and each PodDisruptionBudget counts its Deployment\'s pods', async () => {
    const ns = await freshNamespace('fanout-ha');
    const secrets = await kubectl(['apply', '--validate=strict', '-n', ns, '-f', 'deploy/examples/ha-secrets.yaml']);
    expect(secrets.code, secrets.stderr).toBe(0);
    const run = await kubectl(['apply', '--validate=strict', '-k', overlayIn('ha', ns)]);
    expect(run.code, run.stderr).toBe(0);
    expect(warnings(run.stderr)).toEqual([]);

    const podsOf = async (component: string) =>
      ((await kubeRequest(conn, 'GET', `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(`app.kubernetes.io/component=${component}`)}`)).body.items as Doc[]).filter(
        (p) => !(p.metadata as { deletionTimestamp?: string }).deletionTimestamp,
      );
    const pdb = async (name: string) => (await kubeRequest(conn, 'GET', `/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets/${name}`)).body;
    await waitFor(
      async () => {
        const [api, dispatcher, apiBudget, dispatcherBudget] = await Promise.all([podsOf('api'), podsOf('dispatcher'), pdb('fanout-api'), pdb('fanout-dispatcher')]);
        // the disruption controller found the pods each budget selects (expectedPods: the pods
        // for minAvailable, the owning Deployment's scale for maxUnavailable)
        return (
          api.length === 3 &&
          dispatcher.length === 2 &&
          apiBudget.status?.expectedPods === 3 &&
          dispatcherBudget.status?.expectedPods === 2 && { api, dispatcher, apiBudget, dispatcherBudget }
        );
      },
      {
        what: `3 API and 2 dispatcher pods in ${ns}, counted by their PodDisruptionBudgets`,
        timeoutMs: 60_000,
        describe: async () => `budgets: ${JSON.stringify([(await pdb('fanout-api')).status, (await pdb('fanout-dispatcher')).status])}\n${await describePods(ns)}`,
      },
    );
    const apiBudget = await pdb('fanout-api');
    expect(apiBudget.status.desiredHealthy).toBe(2);
    const api = await podsOf('api');
    for (const pod of [...api, ...(await podsOf('dispatcher'))]) {
      const env = envOfContainer(pod.spec.containers[0]);
      expect(env.DATABASE_URL?.valueFrom?.secretKeyRef, pod.metadata.name).toEqual({ name: 'fanout-db-app', key: 'uri' });
      expect((pod.spec.volumes as Array<{ persistentVolumeClaim?: unknown }>).filter((v) => v.persistentVolumeClaim), pod.metadata.name).toEqual([]);
    }
    expect((await kubeRequest(conn, 'GET', `/api/v1/namespaces/${ns}/persistentvolumeclaims`)).body.items).toEqual([]);
  });
});
