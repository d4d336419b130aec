import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { newBatchId } from '../src/store/batch-create.js';
import { applyPostgresMigrations } from '../src/store/postgres/migrate.js';
import { copyRow } from '../src/store/postgres/sql-text.js';
import { itemJson } from './lib.js';

/**
 * Benchmark A's PostgreSQL baseline: the item rows COPYed straight into a table shaped like
 * `items`, through the driver the service uses (pg + pg-copy-streams), with nothing of Fanout
 * around it: no HTTP, no NDJSON parsing, no JSON validation.
 *
 * The table is `CREATE TABLE raw_items (LIKE items INCLUDING ALL)` in a freshly migrated
 * database (same columns, defaults, primary key and partial indexes) plus the foreign key(s) of
 * `items`, pointed at a one-column `raw_batches` table, as the SQLite baseline does. The rows go
 * as the service sends them: one transaction and one COPY per {@link ROWS_PER_COPY} rows (the
 * NDJSON reader's chunk), the COPY text in pieces of {@link COPY_PIECE_CHARS} characters built
 * with the adapter's own `copyRow`. The COPY text is built before the clock starts: only
 * BEGIN, COPY and COMMIT are timed.
 */

/** ingestNdjson's default chunk: the rows of one Store.appendItems call, one COPY. */
export const ROWS_PER_COPY = 5_000;
/** the PostgreSQL adapter's COPY_CHUNK_CHARS */
const COPY_PIECE_CHARS = 64 * 1024;
const COPY_RAW_ITEMS = 'COPY raw_items (batch_id, idx, custom_id, input, status) FROM STDIN';

export interface CopyBaselineResult {
  rate: number;
  seconds: number;
}

/** Runs the baseline on `url`, an empty database it migrates first; returns rows/s. */
export async function postgresCopyBaseline(url: string, n: number): Promise<CopyBaselineResult> {
  await applyPostgresMigrations(url);
  const client = new pg.Client({ connectionString: url, application_name: 'fanout-bench-baseline' });
  await client.connect();
  try {
    await createRawItems(client);
    const batchId = newBatchId();
    await client.query('INSERT INTO raw_batches (id) VALUES ($1)', [batchId]);
    let ms = 0;
    for (let first = 0; first < n; first += ROWS_PER_COPY) {
      const pieces = copyPieces(batchId, first, Math.min(n, first + ROWS_PER_COPY));
      const t0 = performance.now();
      await client.query('BEGIN');
      await pipeline(Readable.from(pieces), client.query(copyFrom(COPY_RAW_ITEMS)));
      await client.query('COMMIT');
      ms += performance.now() - t0;
    }
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM raw_items');
    if (Number(rows[0].n) !== n) throw new Error(`raw COPY stored ${rows[0].n} rows, expected ${n}`);
    return { rate: n / (ms / 1000), seconds: ms / 1000 };
  } finally {
    await client.end();
  }
}

/** raw_items: `items` with its foreign keys re-pointed from batches(id) to raw_batches(id). */
async function createRawItems(client: pg.Client): Promise<void> {
  // search_path public only: pg_get_constraintdef then names `batches` unqualified or as public.batches
  await client.query('SET search_path = public');
  const fks = await client.query<{ def: string }>(
    `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'items'::regclass AND contype = 'f' ORDER BY conname`,
  );
  if (fks.rows.length === 0) throw new Error('the migrated items table has no foreign key: the baseline expects one to batches');
  await client.query('CREATE TABLE raw_batches (id text PRIMARY KEY NOT NULL)');
  await client.query('CREATE TABLE raw_items (LIKE items INCLUDING ALL)');
  for (const { def } of fks.rows) {
    const repointed = def.replace(/REFERENCES (public\.)?batches\(id\)/, 'REFERENCES raw_batches(id)');
    if (repointed === def) throw new Error(`items has a foreign key the baseline does not know how to copy: ${def}`);
    await client.query(`ALTER TABLE raw_items ADD ${repointed}`);
  }
}

/** Rows first..last-1 as COPY text, in pieces as the adapter sends them. */
function copyPieces(batchId: string, first: number, last: number): string[] {
  const pieces: string[] = [];
  let piece = '';
  for (let k = first; k < last; k++) {
    piece += copyRow([batchId, k, `item-${String(k).padStart(7, '0')}`, itemJson(k), 'pending']);
    if (piece.length >= COPY_PIECE_CHARS) {
      pieces.push(piece);
      piece = '';
    }
  }
  if (piece !== '') pieces.push(piece);
  return pieces;
}
