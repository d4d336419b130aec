import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO } from '../helpers/processes.js';
import { startTestService, type TestService } from '../helpers/service.js';

/**
 * `@fanout/sdk` as a user gets it: `npm pack` of sdk/ (its prepack builds dist/), the tarball
 * installed into a scratch project outside the repository, then used from plain `node` (an .mjs
 * script, no tsx, no loader) against a live service, and from TypeScript through its `.d.ts`.
 * Every child process runs asynchronously: the service answers from this very process.
 */

const run = promisify(execFile);
const SDK_DIR = path.join(REPO, 'sdk');
const TSC = path.join(REPO, 'node_modules/.bin/tsc');

/** What a user's script does: create, wait, stream results, and handle problems. */
const CONSUMER_SCRIPT = `
import { createFanoutClient, FanoutProblemError, isFinalPhase } from '@fanout/sdk';

const fanout = createFanoutClient({ baseUrl: process.env.FANOUT_URL, apiKey: process.env.FANOUT_API_KEY });
const created = await fanout.createBatch({ task: 'rev', labels: { from: 'package' }, items: ['abc', 'hello', 'xy'] });
const phases = [];
const done = await fanout.waitForBatch(created.id, { onProgress: (p) => phases.push(p.phase), pollMs: 100 });
const results = [];
for await (const line of fanout.results(created.id)) results.push([line.index, line.status, line.result]);

async function problemOf(call) {
  try {
    await call();
    return 'no error';
  } catch (err) {
    if (!(err instanceof FanoutProblemError)) return 'not a FanoutProblemError: ' + err;
    return { status: err.status, type: err.type, title: err.title, pointers: err.errors.map((e) => e.pointer) };
  }
}
const notFound = await problemOf(() => fanout.getBatch('b-does-not-exist'));
const invalid = await problemOf(() => fanout.createBatch({ task: 'rev', items: [] }));
console.log(JSON.stringify({ id: created.id, phase: done.status.phase, final: isFinalPhase(done.status.phase), lastPhase: phases.at(-1), results, notFound, invalid }));
`;

/** A TypeScript consumer: compiles only if the declarations describe the client. */
const CONSUMER_TS = `
import { createFanoutClient, FanoutProblemError, type Batch, type BatchSpec, type ResultLine } from '@fanout/sdk';

const spec: BatchSpec = { task: 'rev', items: ['abc'] };
export async function main(): Promise<string[]> {
  const fanout = createFanoutClient({ baseUrl: 'http://127.0.0.1:8080', apiKey: 'key' });
  const batch: Batch = await fanout.waitForBatch((await fanout.createBatch(spec)).id);
  const lines: ResultLine[] = [];
  for await (const line of fanout.results(batch.id)) lines.push(line);
  try {
    await fanout.getBatch('b-x');
  } catch (err) {
    if (err instanceof FanoutProblemError) return err.errors.map((e) => e.pointer + String(err.status));
  }
  return lines.map((l) => String(l.index));
}
`;

/** The same file with a mistake the declarations must catch. */
const WRONG_TS = `
import { createFanoutClient } from '@fanout/sdk';
const fanout = createFanoutClient({ baseUrl: 'http://127.0.0.1:8080', apiKey: 'key' });
export const phase: number = (await fanout.getBatch('b-x')).status.phase;
`;

describe('@fanout/sdk as an installed package', () => {
  let svc: TestService;
  let scratch: string;
  let tarball: string;
  let packedFiles: string[];

  beforeAll(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-sdk-consumer-'));
    const packDir = path.join(scratch, 'pack');
    fs.mkdirSync(packDir);
    const packed = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: SDK_DIR, maxBuffer: 16 << 20 });
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = path.join(packDir, info!.filename);
    packedFiles = info!.files.map((f) => f.path).sort();

    const project = path.join(scratch, 'app');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'sdk-consumer', version: '1.0.0', private: true, type: 'module' }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: project, maxBuffer: 16 << 20 });

    svc = await startTestService({ redisUrl: inject('redisUrl'), tasks: ['rev=rev'] });
  }, 240_000);

  afterAll(async () => {
    await svc?.close();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('packs the built JavaScript and declarations, and nothing else', () => {
    expect(path.relative(REPO, scratch).startsWith('..')).toBe(true);
    expect(packedFiles).toContain('package.json');
    for (const module of ['index', 'client', 'errors', 'lines', 'sse']) {
      expect(packedFiles).toContain(`dist/${module}.js`);
      expect(packedFiles).toContain(`dist/${module}.d.ts`);
    }
    expect(packedFiles).toContain('dist/generated/schema.d.ts');
    const unexpected = packedFiles.filter((f) => !/^(package\.json|README\.md|dist\/.+\.(js|d\.ts))$/.test(f));
    expect(unexpected).toEqual([]);
    expect(packedFiles.filter((f) => /\.test\.|tsbuildinfo|\.map$|^src\//.test(f))).toEqual([]);
  });

  it('installs with openapi-fetch as its only runtime dependency', () => {
    const app = path.join(scratch, 'app');
    const installed = JSON.parse(fs.readFileSync(path.join(app, 'node_modules/@fanout/sdk/package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(installed.dependencies)).toEqual(['openapi-fetch']);
    expect(fs.existsSync(path.join(app, 'node_modules/openapi-fetch/package.json'))).toBe(true);
    // The installed copy is the packed one, not a link back into the repository.
    expect(fs.lstatSync(path.join(app, 'node_modules/@fanout/sdk')).isSymbolicLink()).toBe(false);
    // Its JavaScript imports nothing else: no Node built-ins, no repository code.
    const dist = path.join(app, 'node_modules/@fanout/sdk/dist');
    const specifiers = new Set<string>();
    for (const file of fs.readdirSync(dist, { recursive: true }) as string[]) {
      if (!file.endsWith('.js')) continue;
      for (const m of fs.readFileSync(path.join(dist, file), 'utf8').matchAll(/\b(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]/g)) {
        const spec = m[1] ?? m[2]!;
        if (!spec.startsWith('./') && !spec.startsWith('../')) specifiers.add(spec);
      }
    }
    expect([...specifiers]).toEqual(['openapi-fetch']);
  });

  it('creates, waits, streams results and reports problems from plain node', async () => {
    const app = path.join(scratch, 'app');
    fs.writeFileSync(path.join(app, 'use-sdk.mjs'), CONSUMER_SCRIPT);
    const out = await run(process.execPath, ['use-sdk.mjs'], {
      cwd: app,
      // no NODE_OPTIONS: vitest's own loaders must not leak into the consumer
      env: { PATH: process.env.PATH, FANOUT_URL: svc.url, FANOUT_API_KEY: svc.apiKey },
      timeout: 60_000,
    });
    const report = JSON.parse(out.stdout);
    expect(report.phase).toBe('Succeeded');
    expect(report.final).toBe(true);
    expect(report.lastPhase).toBe('Succeeded');
    expect(report.results).toEqual([
      [0, 'succeeded', 'cba'],
      [1, 'succeeded', 'olleh'],
      [2, 'succeeded', 'yx'],
    ]);
    expect(report.notFound).toMatchObject({ status: 404, pointers: [] });
    expect(report.notFound.type).toMatch(/./);
    expect(report.invalid.status).toBe(422);
    expect(report.invalid.pointers.some((p: string) => p.endsWith('/items'))).toBe(true);
    // The batch is really there: the service saw what the script did.
    const stored = await svc.client.json('GET', `/v1/batches/${report.id}`);
    expect(stored.body.labels).toEqual({ from: 'package' });
  }, 90_000);

  it('type-checks a TypeScript consumer against the declarations, and rejects a wrong one', async () => {
    const app = path.join(scratch, 'app');
    const tsconfig = {
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM', 'DOM.Iterable'], types: [], strict: true, noEmit: true },
    };
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(tsconfig));
    fs.writeFileSync(path.join(app, 'consumer.ts'), CONSUMER_TS);
    await run(TSC, ['-p', '.'], { cwd: app });

    fs.writeFileSync(path.join(app, 'wrong.ts'), WRONG_TS);
    const failed = await run(TSC, ['-p', '.'], { cwd: app }).then(
      () => undefined,
      (err: { stdout: string }) => err.stdout,
    );
    expect(failed).toMatch(/wrong\.ts.*error TS2322/);
  }, 60_000);
});
