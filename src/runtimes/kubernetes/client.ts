import { ApiException, KubeConfig } from '@kubernetes/client-node';
import type { KubernetesConfig } from '../../config/config.js';
import type { RuntimeSettings } from './manifests.js';

/** The cluster connection: the configured kubeconfig file, else the pod's in-cluster account. */
export function loadKubeConfig(config: KubernetesConfig): KubeConfig {
  const kc = new KubeConfig();
  if (config.kubeconfig) kc.loadFromFile(config.kubeconfig);
  else kc.loadFromCluster();
  return kc;
}

/** What the manifest builders need from the configuration. */
export function runtimeSettings(config: KubernetesConfig, redis: { url: string; prefix: string }, apiUrl: string): RuntimeSettings {
  return {
    namespace: config.namespace,
    apiUrl: config.publicUrl ?? apiUrl,
    redisUrl: config.redisUrl ?? redis.url,
    redisPrefix: redis.prefix,
    ttlSecondsAfterFinished: config.ttlSecondsAfterFinished,
  };
}

/** The API server's own message from a failed call (its Status object), else the HTTP code. */
export function serverMessage(err: ApiException<unknown>): string {
  const body = err.body;
  if (typeof body === 'string') {
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return status.message;
    } catch {
      // not JSON: the text itself
    }
    return body.slice(0, 1000) || `HTTP ${err.code}`;
  }
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return `HTTP ${err.code}`;
}
