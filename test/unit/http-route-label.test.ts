import { describe, expect, it } from 'vitest';
import { methodLabel, routeTemplate } from '../../src/domain/http-route-label.js';

describe('routeTemplate', () => {
  it.each<[string, string]>([
    ['/healthz', '/healthz'],
    ['/v1/batches', '/v1/batches'],
    ['/v1/batches/:id', '/v1/batches/{id}'],
    ['/v1/batches/:id/items/:index/result', '/v1/batches/{id}/items/{index}/result'],
    ['/v1/batches/:id{[a-z0-9]+}', '/v1/batches/{id}'],
    ['/v1/items/:index{[0-9]{1,9}}/input', '/v1/items/{index}/input'],
    ['/v1/webhooks/:webhook_id?', '/v1/webhooks/{webhook_id}'],
    ['/ui/assets/*', '/ui/assets/*'],
    ['*', '*'],
  ])('%s → %s', (path, label) => {
    expect(routeTemplate(path)).toBe(label);
  });
});

describe('methodLabel', () => {
  it.each<[string, string]>([
    ['GET', 'GET'],
    ['HEAD', 'HEAD'],
    ['DELETE', 'DELETE'],
    ['PROPFIND', 'other'],
    ['get', 'other'],
    ['X'.repeat(100), 'other'],
  ])('%s → %s', (method, label) => {
    expect(methodLabel(method)).toBe(label);
  });
});
