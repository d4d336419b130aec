import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('Kubernetes configuration', () => {
  it('is off without a kubeconfig or a pod around it', () => {
    expect(loadConfig({}, {}).kubernetes).toBeUndefined();
  });

  it('is on with KUBECONFIG, with the defaults', () => {
    expect(loadConfig({}, { KUBECONFIG: '/k/config' }).kubernetes).toEqual({
      kubeconfig: '/k/config',
      namespace: 'default',
      allowedNamespaces: ['default'],
      publicUrl: undefined,
      redisUrl: undefined,
      ttlSecondsAfterFinished: 3600,
      createQps: 20,
      shardSize: 100_000,
    });
  });

  it('is on in a pod (in-cluster account), and FANOUT_KUBERNETES=off turns it off either way', () => {
    expect(loadConfig({}, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }).kubernetes?.kubeconfig).toBeUndefined();
    expect(loadConfig({}, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }).kubernetes).toBeDefined();
    expect(loadConfig({}, { KUBERNETES_SERVICE_HOST: '10.0.0.1', FANOUT_KUBERNETES: 'off' }).kubernetes).toBeUndefined();
    expect(loadConfig({}, { KUBECONFIG: '/k', FANOUT_KUBERNETES: 'off' }).kubernetes).toBeUndefined();
  });

  it('takes flags over the environment', () => {
    const k = loadConfig(
      { kubeconfig: '/flag/config', namespace: 'batch', publicUrl: 'http://fanout.example:8080/' },
      { KUBECONFIG: '/env/config', FANOUT_NAMESPACE: 'other', FANOUT_PUBLIC_URL: 'http://env' },
    ).kubernetes!;
    expect([k.kubeconfig, k.namespace, k.publicUrl]).toEqual(['/flag/config', 'batch', 'http://fanout.example:8080']);
  });

  it('allows the namespace plus FANOUT_ALLOWED_NAMESPACES', () => {
    const k = loadConfig({}, { KUBECONFIG: '/k', FANOUT_NAMESPACE: 'batch', FANOUT_ALLOWED_NAMESPACES: 'team-a, team-b,batch' }).kubernetes!;
    expect(k.allowedNamespaces).toEqual(['batch', 'team-a', 'team-b']);
  });

  it.each([
    [{ FANOUT_NAMESPACE: 'Not_A_Namespace' }, /namespace "Not_A_Namespace"/],
    [{ FANOUT_ALLOWED_NAMESPACES: 'ok,-bad' }, /namespace "-bad"/],
    [{ FANOUT_PUBLIC_URL: 'fanout:8080' }, /FANOUT_PUBLIC_URL must be an http\(s\) URL/],
    [{ FANOUT_KUBERNETES_REDIS_URL: 'localhost:6379' }, /FANOUT_KUBERNETES_REDIS_URL must start with redis:\/\//],
    [{ FANOUT_KUBERNETES_CREATE_QPS: '0' }, /FANOUT_KUBERNETES_CREATE_QPS must be an integer >= 1/],
    [{ FANOUT_KUBERNETES_SHARD_SIZE: 'lots' }, /FANOUT_KUBERNETES_SHARD_SIZE must be an integer >= 1/],
    [{ FANOUT_KUBERNETES_SHARD_SIZE: '100001' }, /FANOUT_KUBERNETES_SHARD_SIZE must be at most 100000/],
  ])('refuses bad settings with one clear line: %o', (env, message) => {
    expect(() => loadConfig({}, { KUBECONFIG: '/k', ...env })).toThrow(ConfigError);
    expect(() => loadConfig({}, { KUBECONFIG: '/k', ...env })).toThrow(message);
  });
});
