import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * docs/architecture.md names the files and functions where each part and each transition
 * lives. This keeps it from rotting silently: every repository path it names in backticks
 * exists, every "`name` in `file`" (or "`name` (`file`)") names something that file contains,
 * and every link to a section of it, or of the other documents, from source comments, tests,
 * README or docs, lands on a heading. And nothing points at planning files outside the
 * repository any more.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOC = 'docs/architecture.md';

/** Top-level folders of the repository: a backticked span starting with one is a repository path. */
const REPO_FOLDERS = ['src', 'test', 'docs', 'migrations', 'deploy', 'bench', 'scripts', 'sdk', 'examples', 'bin'];
/** Files at the repository root that the documents name without a folder. */
const ROOT_FILES = ['README.md', 'openapi.yaml', 'package.json', 'Containerfile', 'tsconfig.json'];

const read = (rel: string) => fs.readFileSync(path.join(ROOT, rel), 'utf8');
const exists = (rel: string) => fs.existsSync(path.join(ROOT, rel));

/** The text outside fenced code blocks (diagrams hold no references). */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '');
}

/** Backticked spans that name a file or folder of this repository. */
function repoPaths(markdown: string): string[] {
  const spans = [...prose(markdown).matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);
  return spans.filter((s) => {
    if (/[\s<>*]/.test(s)) return false;
    if (ROOT_FILES.includes(s)) return true;
    return s.includes('/') && REPO_FOLDERS.includes(s.split('/')[0]);
  });
}

/** "`Name` in `file.ts`" and "`Name` (`file.ts`)": a function, class or `Class.method` and its file. */
function namedDefinitions(markdown: string): { name: string; file: string }[] {
  const pattern = /`([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)?)`\s+(?:in\s+|\()`([\w./-]+\.(?:ts|js))`/g;
  return [...prose(markdown).matchAll(pattern)].map((m) => ({ name: m[1], file: m[2] }));
}

/** Whether every part of `Class.method` occurs as a whole word in the file. */
function mentions(source: string, name: string): boolean {
  return name.split('.').every((part) => new RegExp(`(^|[^\\w$])${part.replace(/\$/g, '\\$')}($|[^\\w$])`).test(source));
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchors(markdown: string): Set<string> {
  return new Set([...prose(markdown).matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => anchorOf(m[1])));
}

function filesUnder(rel: string, extension: RegExp): string[] {
  return fs.readdirSync(path.join(ROOT, rel), { withFileTypes: true }).flatMap((e) => {
    const child = `${rel}/${e.name}`;
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'go' ? [] : filesUnder(child, extension);
    return extension.test(e.name) ? [child] : [];
  });
}

/**
 * Links to a section of a Markdown file of the repository: a file name ending in `.md`, then `#`
 * and the anchor. Source comments name the file from the repository root (`docs/…`), Markdown
 * from its own folder; `](#anchor)` in Markdown is a section of the same file.
 */
function sectionLinks(): { from: string; target: string; anchor: string }[] {
  const sources = [...filesUnder('src', /\.ts$/), ...filesUnder('test', /\.ts$/), 'README.md', ...filesUnder('docs', /\.md$/)];
  const links: { from: string; target: string; anchor: string }[] = [];
  for (const from of sources) {
    const text = read(from);
    const markdown = from.endsWith('.md');
    for (const m of text.matchAll(/([\w./-]*\.md)#([\w-]+)/g)) {
      const target = markdown && !m[1].startsWith('docs/') ? path.posix.normalize(path.posix.join(path.posix.dirname(from), m[1])) : m[1];
      links.push({ from, target, anchor: m[2] });
    }
    if (markdown) for (const m of text.matchAll(/\]\(#([\w-]+)\)/g)) links.push({ from, target: from, anchor: m[1] });
  }
  return links;
}

describe('docs/architecture.md stays true to the repository', () => {
  const doc = read(DOC);

  it('names only repository paths that exist', () => {
    const paths = [...new Set(repoPaths(doc))];
    // A document that named (almost) nothing, or an extractor that found nothing, proves nothing.
    expect(paths.length).toBeGreaterThan(60);
    expect(paths.filter((p) => !exists(p.replace(/\/$/, '')))).toEqual([]);
  });

  it('names functions and classes in the files that hold them', () => {
    const pairs = namedDefinitions(doc);
    expect(pairs.length).toBeGreaterThan(40);
    const wrong = pairs.filter(({ name, file }) => !exists(file) || !mentions(read(file), name)).map(({ name, file }) => `${name} in ${file}`);
    expect(wrong).toEqual([]);
  });

  it('has a heading for every link to one of its sections (and so do the other documents)', () => {
    const links = sectionLinks();
    expect(links.filter((l) => l.target === DOC).length).toBeGreaterThan(10);
    const broken = links.filter((l) => !exists(l.target) || !anchors(read(l.target)).has(l.anchor));
    expect(broken.map((l) => `${l.from}: ${l.target}#${l.anchor}`)).toEqual([]);
  });

  it('is where source comments and documents point, not at files outside the repository', () => {
    // The planning documents that lived beside the repository (this file names them: skipped).
    const outside = /\b(DESIGN|STYLE|DEPENDENCIES)\.md\b|\/work\/shared\b|\.\.\/shared\/|\breference\/kubernetes/;
    const self = 'test/unit/docs-paths.test.ts';
    const files = [...filesUnder('src', /\.ts$/), ...filesUnder('test', /\.ts$/), ...filesUnder('scripts', /\.ts$/), 'README.md', ...filesUnder('docs', /\.md$/)].filter((f) => f !== self);
    expect(files.length).toBeGreaterThan(100);
    expect(files.filter((f) => outside.test(read(f)))).toEqual([]);
    expect(['see DESIGN.md "Webhooks"', 'in reference/kubernetes-run-jobs.md', 'docs/architecture.md#webhooks'].map((t) => outside.test(t))).toEqual([true, true, false]);
  });

  it('would notice a renamed file, a moved function and a renamed section', () => {
    const sample = 'See `src/store/leases.ts`, `src/store/gone.ts`, `fanout.dev/batch` and `releaseLeases` in `src/store/leases.ts`, `releaseAll` in `src/store/leases.ts`.';
    expect(repoPaths(sample)).toEqual(['src/store/leases.ts', 'src/store/gone.ts', 'src/store/leases.ts', 'src/store/leases.ts']);
    expect(repoPaths(sample).filter((p) => !exists(p))).toEqual(['src/store/gone.ts']);
    const leases = read('src/store/leases.ts');
    expect(namedDefinitions(sample).map(({ name }) => [name, mentions(leases, name)])).toEqual([
      ['releaseLeases', true],
      ['releaseAll', false],
    ]);
    expect(anchorOf('Leases and attempts')).toBe('leases-and-attempts');
    expect(anchorOf('`fanout exec`: the indexed-job pod wrapper')).toBe('fanout-exec-the-indexed-job-pod-wrapper');
    expect(anchors('# A\n```\n# not a heading\n```\n## Redis is a cache')).toEqual(new Set(['a', 'redis-is-a-cache']));
  });
});
