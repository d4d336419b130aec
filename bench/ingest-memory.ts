import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO } from './lib.js';

/**
 * Bench A's memory figures: the server's peak RSS (VmHWM) during an NDJSON ingest of 1,000,000
 * and of 5,000,000 items (both × BENCH_SCALE; BENCH_A_LARGE_ITEMS sets the second), each in a
 * fresh server. Target: both under 150 MB, and the larger within 10% of the smaller: memory that
 * does not depend on the upload's size.
 */
export const RSS_TARGET_MB = 150;
export const RSS_SPREAD_TARGET = 0.1;

/** Items of the second, larger ingest: BENCH_A_LARGE_ITEMS, or five times the first. */
export function largeIngestItems(firstItems: number): number {
  const set = Number(process.env.BENCH_A_LARGE_ITEMS || NaN);
  return Number.isFinite(set) && set > 0 ? Math.round(set) : firstItems * 5;
}

/**
 * Compiles the server (`npm run build`) so that `bin/fanout.js` runs dist/, as an installed
 * server does: in a checkout whose dist/ is older than src/, it would run the sources through
 * tsx, whose loader and source maps add tens of MB to the RSS measured.
 */
export function compileServer(log: (msg: string) => void): void {
  log('compiling the server (npm run build): the bench measures what an installed server runs');
  const built = spawnSync(process.execPath, [path.join(REPO, 'scripts/build.mjs')], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`npm run build failed:\n${built.stdout}${built.stderr}`);
}

/** How far apart two peak RSS figures are, as a fraction of the smaller. */
export const rssSpread = (a: number, b: number): number => Math.abs(a - b) / Math.min(a, b);
