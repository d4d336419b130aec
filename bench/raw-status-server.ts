import Database from 'better-sqlite3';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import pg from 'pg';

/**
 * Bench D's baseline: the three status reads as a bare Hono + @hono/node-server app would answer
 * them straight from the database Fanout wrote, with no authentication, validation, metrics,
 * middleware or cache, the same rows and the same JSON shape:
 *
 *   node --import tsx bench/raw-status-server.ts <sqlite file | postgres:// url>
 *
 * SQLite through better-sqlite3 (statements prepared once), PostgreSQL through a pg pool of 10
 * (one statement per read). Listens on 127.0.0.1, prints `listening on http://…`.
 */

const target = process.argv[2];
if (!target) throw new Error('usage: raw-status-server.ts <sqlite file | postgres:// url>');

const BATCH = `SELECT id, name, labels, spec, phase, status, total, pending, running, succeeded, failed, cancelled, created_at AS "createdAt"
  FROM batches WHERE id = $1`;
const BATCHES = `SELECT id, name, labels, spec, phase, status, total, pending, running, succeeded, failed, cancelled, created_at AS "createdAt"
  FROM batches ORDER BY id DESC LIMIT $1`;
const ITEMS = `SELECT idx, custom_id AS "customId", status, attempt, result, error, reason, started_at AS "startedAt", finished_at AS "finishedAt",
  worker, exit_code AS "exitCode", http_status AS "httpStatus", attempt_started_at AS "attemptStartedAt", attempt_finished_at AS "attemptFinishedAt"
  FROM items WHERE batch_id = $1 ORDER BY idx LIMIT $2`;
const ATTEMPTS = `SELECT idx, attempt, outcome, exit_code AS "exitCode", http_status AS "httpStatus", condition, error, decision, worker,
  started_at AS "startedAt", finished_at AS "finishedAt" FROM attempts WHERE batch_id = $1 AND idx BETWEEN $2 AND $3 ORDER BY idx, attempt`;

type Row = Record<string, unknown>;
interface Reads {
  batch(id: string): Promise<Row | undefined>;
  batches(limit: number): Promise<Row[]>;
  items(id: string, limit: number): Promise<{ items: Row[]; attempts: Row[] }>;
}

function sqliteReads(file: string): Reads {
  const db = new Database(file, { readonly: true });
  const sqlite = (text: string) => db.prepare(text.replace(/\$\d/g, '?'));
  const batch = sqlite(BATCH);
  const batches = sqlite(BATCHES);
  const items = sqlite(ITEMS);
  const attempts = sqlite(ATTEMPTS);
  return {
    batch: async (id) => batch.get(id) as Row | undefined,
    batches: async (limit) => batches.all(limit) as Row[],
    async items(id, limit) {
      const rows = items.all(id, limit) as Row[];
      return { items: rows, attempts: rows.length ? (attempts.all(id, rows[0].idx, rows[rows.length - 1].idx) as Row[]) : [] };
    },
  };
}

function postgresReads(url: string): Reads {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  return {
    batch: async (id) => (await pool.query(BATCH, [id])).rows[0] as Row | undefined,
    batches: async (limit) => (await pool.query(BATCHES, [limit])).rows as Row[],
    async items(id, limit) {
      const rows = (await pool.query(ITEMS, [id, limit])).rows as Row[];
      const attempts = rows.length ? ((await pool.query(ATTEMPTS, [id, rows[0].idx, rows[rows.length - 1].idx])).rows as Row[]) : [];
      return { items: rows, attempts };
    },
  };
}

const iso = (ms: unknown) => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString());

function batchJson(r: Row) {
  const status = JSON.parse(r.status as string) as Row;
  return {
    id: r.id,
    name: r.name,
    labels: JSON.parse(r.labels as string),
    createdAt: iso(r.createdAt),
    spec: JSON.parse(r.spec as string),
    status: {
      phase: r.phase,
      counts: { total: r.total, pending: r.pending, running: r.running, succeeded: r.succeeded, failed: r.failed, cancelled: r.cancelled },
      completedIndexes: status.completedIndexes,
      failedIndexes: status.failedIndexes,
      conditions: status.conditions,
      startTime: status.startTime,
      completionTime: status.completionTime,
    },
  };
}

const reads = target.startsWith('postgres://') || target.startsWith('postgresql://') ? postgresReads(target) : sqliteReads(target);
const app = new Hono();
app.get('/v1/batches/:id', async (c) => {
  const row = await reads.batch(c.req.param('id'));
  return row ? c.json(batchJson(row)) : c.json({ title: 'Not Found' }, 404);
});
app.get('/v1/batches', async (c) => c.json({ items: (await reads.batches(Number(c.req.query('limit') ?? 50))).map(batchJson), nextCursor: null }));
app.get('/v1/batches/:id/items', async (c) => {
  const { items, attempts } = await reads.items(c.req.param('id'), Number(c.req.query('limit') ?? 100));
  return c.json({
    items: items.map((i) => ({
      index: i.idx,
      customId: i.customId,
      status: i.status,
      result: i.result === null ? null : JSON.parse(i.result as string),
      error: i.error,
      reason: i.reason,
      startedAt: iso(i.startedAt),
      finishedAt: iso(i.finishedAt),
      attempts: attemptsOf(i, attempts).map((a) => ({ ...a, startedAt: iso(a.startedAt), finishedAt: iso(a.finishedAt) })),
    })),
    nextCursor: null,
  });
});
/** An item's attempts rows, and its succeeded attempt from its own row when no row holds it (as Fanout keeps it). */
function attemptsOf(item: Row, attempts: Row[]): Row[] {
  const rows = attempts.filter((a) => a.idx === item.idx);
  if (item.status !== 'succeeded' || rows.some((a) => a.attempt === item.attempt)) return rows;
  const succeeded = { idx: item.idx, attempt: item.attempt, outcome: 'succeeded', exitCode: item.exitCode, httpStatus: item.httpStatus, condition: null, error: null, decision: null, worker: item.worker };
  return [...rows, { ...succeeded, startedAt: item.attemptStartedAt, finishedAt: item.attemptFinishedAt ?? item.finishedAt }];
}
serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => process.stdout.write(`listening on http://127.0.0.1:${info.port}\n`));
