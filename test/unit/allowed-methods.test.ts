import { describe, expect, it } from 'vitest';
import { methodsByPath } from '../../src/domain/allowed-methods.js';

describe('methodsByPath', () => {
  const allowed = methodsByPath([
    { method: 'ALL', path: '/v1/*' },
    { method: 'GET', path: '/v1/batches' },
    { method: 'POST', path: '/v1/batches' },
    { method: 'DELETE', path: '/v1/batches' },
    { method: 'GET', path: '/v1/batches/:id' },
    { method: 'POST', path: '/v1/batches/:id/cancel' },
    { method: 'PUT', path: '/v1/batches/:id/items/:index/result' },
    { method: 'GET', path: '/openapi.yaml' },
    { method: 'GET', path: '/ui/*' },
  ]);
  it.each<[string, string[]]>([
    ['/v1/batches', ['DELETE', 'GET', 'HEAD', 'POST']],
    ['/v1/batches/', []], // Hono is strict about a trailing slash: GET /v1/batches/ is 404, so no 405 either
    ['/v1/batches/b123', ['GET', 'HEAD']],
    ['/v1/batches/b123/cancel', ['POST']],
    ['/v1/batches/b1/items/0/result', ['PUT']],
    ['/openapi.yaml', ['GET', 'HEAD']],
    ['/openapiXyaml', []],
    ['/v1/batches/b1/items', []],
    ['/v1/batches/b1/cancel/x', []],
    ['/v1/nothing', []],
    ['/ui/batches', []],
  ])('%s allows %j', (path, methods) => expect(allowed(path)).toEqual(methods));
});
