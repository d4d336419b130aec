import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/** A merge that left `<<<<<<<` … `>>>>>>>` in a committed file (it happened once, in docs/operations.md). */
const REPO = path.resolve(import.meta.dirname, '../..');
const MARKER = /^(<{7} |>{7} |={7}$)/m;

describe('the tree', () => {
  it('has no merge-conflict markers in tracked text files', () => {
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: REPO, encoding: 'utf8' })
      .split('\0')
      .filter((f) => /\.(ts|js|mjs|md|ya?ml|json|sql|sh|go|py|toml|css|html)$/.test(f) && f !== 'test/unit/no-conflict-markers.test.ts');
    expect(files.length).toBeGreaterThan(100);
    const marked = files.filter((f) => {
      const file = path.join(REPO, f);
      return fs.existsSync(file) && MARKER.test(fs.readFileSync(file, 'utf8'));
    });
    expect(marked).toEqual([]);
  });
});
