import pino from 'pino';
import { loadConfig } from '../config/config.js';
import { LocalBlobStore } from '../blobs/local-blob-store.js';
import type { Store } from '../store/store.js';
import { createApp, openApiYaml } from './app.js';

/**
 * The OpenAPI document as YAML, built from the route definitions alone: an app over no store
 * at all, whose handlers are never called. `npm run openapi` writes it to openapi.yaml.
 */
export function renderOpenApiYaml(): string {
  const unused = () => {
    throw new Error('not available while rendering the OpenAPI document');
  };
  const store: Store = { dialect: 'sqlite', read: unused, write: unused, appendItems: unused, ping: unused, close: unused };
  const app = createApp({
    store,
    config: loadConfig({}, {}),
    logger: pino({ level: 'silent' }),
    metrics: { registry: { metrics: unused, contentType: 'text/plain' }, httpDuration: { observe: unused } },
    blobs: new LocalBlobStore('/nonexistent'),
    notify: unused,
    knownTasks: unused,
    haltInRedis: unused,
    forgetDeleted: unused,
    ready: unused,
    tokens: { sign: unused, verify: unused },
  });
  return openApiYaml(app);
}
