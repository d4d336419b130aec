/**
 * 405 instead of 404 for a path that exists under other methods (RFC 9110 §15.5.6): which methods
 * each registered path answers, for the `Allow` header. Hono answers HEAD with the GET route, so
 * a path with GET also allows HEAD. Middleware (`ALL`) and wildcard routes name no method.
 */

type RouteLike = { method: string; path: string };

/** `/v1/batches/:id/items/:index` → a RegExp matching one concrete path (a parameter is one segment). */
function pathPattern(path: string): RegExp {
  const escaped = path
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${escaped}$`);
}

/** A function answering the sorted methods a concrete path allows; [] when no route has the path. */
export function methodsByPath(routes: readonly RouteLike[]): (path: string) => string[] {
  const byPattern = new Map<string, { re: RegExp; methods: Set<string> }>();
  for (const r of routes) {
    if (r.method === 'ALL' || r.path.includes('*')) continue;
    const entry = byPattern.get(r.path) ?? { re: pathPattern(r.path), methods: new Set<string>() };
    entry.methods.add(r.method);
    if (r.method === 'GET') entry.methods.add('HEAD');
    byPattern.set(r.path, entry);
  }
  const entries = [...byPattern.values()];
  return (path) => {
    const methods = new Set<string>();
    for (const e of entries) if (e.re.test(path)) for (const m of e.methods) methods.add(m);
    return [...methods].sort();
  };
}
