import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's root directory: where `package.json` and `migrations/` are. Found by walking up
 * from this module rather than by a fixed number of `..`, because the same code runs from
 * `src/` (tests, tsx) and from `dist/src/` (the compiled build, see docs/operations.md
 * "The compiled build"), which sit at different depths.
 */
export const packageRoot: string = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'migrations'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package root (package.json beside migrations/) above ${start}`);
  }
}
