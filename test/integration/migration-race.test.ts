import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/processes.js';

/**
 * Processes that start together on a new SQLite file (the API and dispatcher pods of deploy/)
 * both apply the migrations: every one must come up, and the schema must be there once.
 */
describe('migrations on a new file from several processes at once', () => {
  it('every process opens the store; the migrations are recorded once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-migrate-race-'));
    const file = path.join(dir, 'fanout.db');
    const startAt = Date.now() + 4000;
    // Each child loads the store module first, then waits for the same instant to open it.
    const script = `
      const { openSqliteStore } = await import(${JSON.stringify(path.join(REPO, 'src/store/sqlite/sqlite-store.ts'))});
      while (Date.now() < ${startAt}) {}
      await openSqliteStore(${JSON.stringify(file)}).close();
    `;
    const runs = Array.from({ length: 6 }, () =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d) => (err += d));
        child.on('exit', (code) => resolve({ code, err }));
      }),
    );
    const results = await Promise.all(runs);
    for (const r of results) expect(r.code, r.err).toBe(0);
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(file, { readonly: true });
    const applied = db.prepare('SELECT count(*) AS n FROM __drizzle_migrations').get() as { n: number };
    const journal = JSON.parse(fs.readFileSync(path.join(REPO, 'migrations/sqlite/meta/_journal.json'), 'utf8')) as { entries: unknown[] };
    expect(applied.n).toBe(journal.entries.length);
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
