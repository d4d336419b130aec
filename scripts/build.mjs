// `npm run build`: compiles src/ and the SDK's sources it imports (sdk/src) into dist/src and dist/sdk/src (ESM JavaScript, declarations, source maps) with
// tsconfig.build.json, copies the files src/ reads at run time that tsc does not emit (the
// dashboard's CSS and JS), and writes dist/.build-stamp last.
//
//   node scripts/build.mjs [--out-dir DIR]     # DIR defaults to dist (tests build elsewhere)
//
// The stamp holds the time the build started. bin/fanout.js, in a checkout that has src/, runs
// dist/ only when the stamp exists and no source is newer than it; an edit made while tsc runs
// is therefore newer than the stamp too. Plain JavaScript, so building needs no tsx.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outFlag = process.argv.indexOf('--out-dir');
const outDir = path.resolve(root, outFlag === -1 ? 'dist' : process.argv[outFlag + 1] ?? '');
if (outFlag !== -1 && !process.argv[outFlag + 1]) {
  console.error('usage: node scripts/build.mjs [--out-dir DIR]');
  process.exit(2);
}

const startedAt = Date.now();
// A clean directory: a source deleted since the last build must not leave its old output behind.
rmSync(outDir, { recursive: true, force: true });

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', outDir], {
  cwd: root,
  stdio: 'inherit',
});
if (compiled.status !== 0) {
  console.error(`build: tsc failed (${compiled.signal ?? `exit ${compiled.status}`}); ${path.relative(root, outDir) || outDir} has no build stamp`);
  process.exit(1);
}

// Read with fs relative to the module (src/api/ui/ui-router.ts), so they sit beside its output.
const assets = path.join('src', 'api', 'ui', 'assets');
mkdirSync(path.join(outDir, assets), { recursive: true });
cpSync(path.join(root, assets), path.join(outDir, assets), { recursive: true });

writeFileSync(path.join(outDir, '.build-stamp'), `${JSON.stringify({ startedAt })}\n`);
console.log(`build: ${path.relative(root, outDir) || outDir} in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
