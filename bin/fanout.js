#!/usr/bin/env node
// The `fanout` command. It runs the compiled CLI, dist/src/cli/index.js (`npm run build`; the
// CLI's client commands use the SDK, so dist/ holds src/ and sdk/src/ side by side).
//
// Which code runs, and why:
// - No src/ beside bin/ (the container image, an installed package): dist/ is all there is, so
//   it runs without any check.
// - A checkout (src/ is here): dist/ runs only if its build stamp (written last by
//   scripts/build.mjs, holding the time the build started) is newer than every file and
//   directory under src/ and sdk/src/ and the tsconfig files. After `git pull`, a checkout of another branch
//   or any edit, the changed files (and the directories of added or deleted ones) are newer than
//   the stamp, so old compiled code never runs silently: the sources run instead through tsx, a
//   development dependency, exactly as they are. `npm run setup` builds, so `npx fanout` runs
//   the compiled code on a fresh machine; `npm run build` makes it current again after a pull.
// Checking is a walk of stat calls (a few milliseconds), far below what compiling TypeScript
// at start-up costs.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const sources = path.join(root, 'src');
const sdkSources = path.join(root, 'sdk', 'src');

/** The build stamp's start time, or undefined when dist/ was never built or a build is under way. */
function buildStartedAt() {
  try {
    return JSON.parse(readFileSync(path.join(root, 'dist', '.build-stamp'), 'utf8')).startedAt;
  } catch {
    return undefined;
  }
}

/** Whether any file or directory under `dir` changed after `time` (ms since the epoch). */
function changedSince(dir, time) {
  if (statSync(dir).mtimeMs > time) return true;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const entryPath = path.join(dir, entry.name);
    if (entry.isDirectory() ? changedSince(entryPath, time) : statSync(entryPath).mtimeMs > time) return true;
  }
  return false;
}

function distIsCurrent() {
  const startedAt = buildStartedAt();
  if (typeof startedAt !== 'number') return false;
  try {
    if (changedSince(sources, startedAt) || changedSince(sdkSources, startedAt)) return false;
    return !['tsconfig.json', 'tsconfig.build.json'].some((file) => statSync(path.join(root, file)).mtimeMs > startedAt);
  } catch {
    return false; // a file vanished mid-walk (a checkout under way) or a tsconfig is missing: not provably current
  }
}

if (!existsSync(sources) || distIsCurrent()) {
  await import('../dist/src/cli/index.js');
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write('fanout: dist/ is missing or older than src/, and tsx is not installed to run the sources: run `npm run build`\n');
    process.exit(1);
  }
  register({ tsconfig: path.join(root, 'tsconfig.json') });
  await import('../src/cli/index.ts');
}
