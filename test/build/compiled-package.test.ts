import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO } from '../helpers/processes.js';

/**
 * `npm run build` and what it ships. The build goes into a scratch package laid out like the
 * container image (dist/, bin/, migrations/, package.json, node_modules; no src/), whose CLI then
 * runs with plain `node`. A resolve hook loaded first (`--import`) records every module URL
 * the process resolves, so the tests see that nothing comes from tsx or a .ts file.
 */

const BUILD_MS = 300_000; // tsc over src/ takes about a minute on the shared 2-core machine
const version = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
let scratch: string;
let pkg: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** every module URL the process resolved */
  resolved: string[];
}

function writeObserver(dir: string): { hook: string; log: string } {
  const log = path.join(dir, `resolved-${randomBytes(4).toString('hex')}.log`);
  const hooks = `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, result.url + '\\n');
  return result;
}`;
  const hook = path.join(dir, `observe-${path.basename(log, '.log')}.mjs`);
  writeFileSync(hook, `import { register } from 'node:module';\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});\n`);
  writeFileSync(log, '');
  return { hook, log };
}

/** `node --import <observer> <pkgDir>/bin/fanout.js ...args`, no FANOUT_* from the outer shell. */
function runBuiltCli(pkgDir: string, args: string[], env: Record<string, string> = {}, input = ''): Promise<Run> {
  const { hook, log } = writeObserver(scratch);
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FANOUT_') && k !== 'NODE_OPTIONS'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', hook, path.join(pkgDir, 'bin/fanout.js'), ...args], {
      cwd: scratch,
      env: { ...cleanEnv, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, resolved: readFileSync(log, 'utf8').split('\n').filter(Boolean) }));
    child.stdin.end(input);
  });
}

/** Fanout's own modules among the resolved URLs, as paths relative to the package. */
function ownModules(run: Run, pkgDir: string): string[] {
  const prefix = `file://${pkgDir}/`;
  return run.resolved.filter((u) => u.startsWith(prefix) && !u.startsWith(`${prefix}node_modules/`)).map((u) => u.slice(prefix.length));
}

function expectNoTypeScript(run: Run) {
  expect(run.resolved.filter((u) => /\/tsx\/|\.[cm]?ts$/.test(u))).toEqual([]);
}

beforeAll(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'fanout-build-test-'));
  pkg = path.join(scratch, 'package');
  mkdirSync(pkg);
  const build = spawnSync(process.execPath, [path.join(REPO, 'scripts/build.mjs'), '--out-dir', path.join(pkg, 'dist')], { cwd: REPO, encoding: 'utf8' });
  expect(build.status, `${build.stdout}\n${build.stderr}`).toBe(0);
  for (const entry of ['bin', 'migrations', 'package.json']) cpSync(path.join(REPO, entry), path.join(pkg, entry), { recursive: true });
  // The repository's node_modules stands in for `npm ci --omit=dev` (it also holds tsx, which
  // is why the tests watch what gets loaded rather than rely on tsx being absent).
  symlinkSync(path.join(REPO, 'node_modules'), path.join(pkg, 'node_modules'));
}, BUILD_MS);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('npm run build', () => {
  it('emits JavaScript, declarations, source maps, the dashboard assets and a build stamp', () => {
    for (const file of ['src/cli/index.js', 'src/cli/index.js.map', 'src/worker/public.js', 'src/worker/public.d.ts', 'src/store/sqlite/sqlite-store.js', 'src/store/postgres/postgres-store.js', 'src/api/ui/assets/dashboard.css', 'src/api/ui/assets/dashboard.js', 'sdk/src/index.js']) {
      expect(existsSync(path.join(pkg, 'dist', file)), file).toBe(true);
    }
    const stamp = JSON.parse(readFileSync(path.join(pkg, 'dist/.build-stamp'), 'utf8')) as { startedAt: number };
    expect(stamp.startedAt).toBeGreaterThan(Date.now() - BUILD_MS);
  });
});

describe('the compiled CLI, without src/ (the image layout)', () => {
  it('answers --version with plain node, loading only dist/', async () => {
    const run = await runBuiltCli(pkg, ['--version']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(version);
    expectNoTypeScript(run);
    const own = ownModules(run, pkg);
    expect(own).toContain('dist/src/cli/index.js');
    expect(own.filter((m) => !m.startsWith('dist/') && m !== 'bin/fanout.js')).toEqual([]);
  });

  it('runs `fanout up`: migrations applied, /healthz and the dashboard assets served, a batch run through the compiled CLI', async () => {
    const apiKey = `key-${randomBytes(8).toString('hex')}`;
    const env = {
      REDIS_URL: inject('redisUrl'),
      FANOUT_REDIS_PREFIX: `b${randomBytes(5).toString('hex')}`,
      FANOUT_DATA_DIR: path.join(scratch, 'data'),
      FANOUT_API_KEY: apiKey,
      LOG_LEVEL: 'warn',
    };
    const { hook, log } = writeObserver(scratch);
    const up = spawn(process.execPath, ['--import', hook, path.join(pkg, 'bin/fanout.js'), 'up', '--port', '0'], { cwd: scratch, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    up.stdout.on('data', (c: Buffer) => (output += c.toString()));
    up.stderr.on('data', (c: Buffer) => (output += c.toString()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fanout up did not listen:\n${output}`)), 60_000);
        const check = () => {
          const m = output.match(/listening on (http:\/\/\S+)/);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        };
        up.stdout.on('data', check);
        up.stderr.on('data', check);
        up.once('exit', (code) => reject(new Error(`fanout up exited ${code}:\n${output}`)));
      });
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
      const css = await fetch(`${url}/ui/assets/dashboard.css`);
      expect(css.status).toBe(200);
      expect(await css.text()).toBe(readFileSync(path.join(REPO, 'src/api/ui/assets/dashboard.css'), 'utf8'));

      const cliEnv = { FANOUT_SERVER: url, FANOUT_API_KEY: apiKey };
      const submitted = await runBuiltCli(pkg, ['submit', '-f', '-', '--wait'], cliEnv, JSON.stringify({ task: 'rev', items: ['abc', 'fanout'] }));
      expect(submitted.code, submitted.stderr).toBe(0);
      const id = submitted.stdout.trim();
      const results = await runBuiltCli(pkg, ['results', id], cliEnv);
      expect(results.code, results.stderr).toBe(0);
      expect(results.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { result: string }).result)).toEqual(['cba', 'tuonaf']);
      const listed = await runBuiltCli(pkg, ['get', 'batches'], cliEnv);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain(id);
      for (const run of [submitted, results, listed]) expectNoTypeScript(run);

      const served = { code: 0, stdout: '', stderr: '', resolved: readFileSync(log, 'utf8').split('\n').filter(Boolean) };
      expectNoTypeScript(served);
      expect(ownModules(served, pkg).filter((m) => !m.startsWith('dist/') && m !== 'bin/fanout.js')).toEqual([]);
    } finally {
      up.kill('SIGTERM');
    }
  }, 120_000);
});

describe('bin/fanout.js in a checkout (src/ present)', () => {
  /** Which of Fanout's CLI entry points a run loaded: the compiled or the TypeScript one. */
  const entry = (run: Run, dir: string) => ownModules(run, dir).filter((m) => /^(dist\/src|src)\/cli\/index\.[jt]s$/.test(m));
  const stamp = (dir: string, startedAt: number) => writeFileSync(path.join(dir, 'dist/.build-stamp'), `${JSON.stringify({ startedAt })}\n`);

  it('runs dist/ while its stamp is newer than every source, and the sources through tsx once one changed, was added or deleted', async () => {
    const checkout = path.join(scratch, 'checkout');
    for (const entry of ['bin', 'migrations', 'package.json', 'src', 'sdk/src', 'tsconfig.json', 'tsconfig.build.json']) cpSync(path.join(REPO, entry), path.join(checkout, entry), { recursive: true });
    cpSync(path.join(pkg, 'dist'), path.join(checkout, 'dist'), { recursive: true });
    symlinkSync(path.join(REPO, 'node_modules'), path.join(checkout, 'node_modules'));

    // The copies are newer than the build: exactly the state after a `git pull`.
    let run = await runBuiltCli(checkout, ['--version']);
    expect([run.code, run.stdout.trim()]).toEqual([0, version]);
    expect(entry(run, checkout)).toEqual(['src/cli/index.ts']);

    // As if built now: everything is older than the stamp.
    const past = new Date(Date.now() - 60_000);
    const age = (p: string) => utimesSync(p, past, past);
    const ageTree = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) (e.isDirectory() ? ageTree : age)(path.join(dir, e.name));
      age(dir);
    };
    ageTree(path.join(checkout, 'src'));
    ageTree(path.join(checkout, 'sdk'));
    for (const f of ['tsconfig.json', 'tsconfig.build.json']) age(path.join(checkout, f));
    stamp(checkout, Date.now() - 1000);
    run = await runBuiltCli(checkout, ['--version']);
    expect(run.code, run.stderr).toBe(0);
    expect(entry(run, checkout)).toEqual(['dist/src/cli/index.js']);
    expectNoTypeScript(run);

    const edited = path.join(checkout, 'src/cli/index.ts');
    writeFileSync(edited, readFileSync(edited, 'utf8'));
    run = await runBuiltCli(checkout, ['--version']);
    expect(entry(run, checkout)).toEqual(['src/cli/index.ts']);

    age(edited);
    const added = path.join(checkout, 'src/domain/added-after-build.ts');
    writeFileSync(added, 'export {};\n');
    age(added); // only its directory's mtime says it is new
    run = await runBuiltCli(checkout, ['--version']);
    expect(entry(run, checkout)).toEqual(['src/cli/index.ts']);

    rmSync(added);
    age(path.join(checkout, 'src/domain'));
    run = await runBuiltCli(checkout, ['--version']);
    expect(entry(run, checkout)).toEqual(['dist/src/cli/index.js']);

    // A checkout without tsconfig.build.json cannot show its build is current: the sources run.
    const buildConfig = path.join(checkout, 'tsconfig.build.json');
    rmSync(buildConfig);
    run = await runBuiltCli(checkout, ['--version']);
    expect([run.code, entry(run, checkout)]).toEqual([0, ['src/cli/index.ts']]);
    cpSync(path.join(REPO, 'tsconfig.build.json'), buildConfig);
    age(buildConfig);
    run = await runBuiltCli(checkout, ['--version']);
    expect(entry(run, checkout)).toEqual(['dist/src/cli/index.js']);

    // A build under way has removed the stamp: the sources run.
    rmSync(path.join(checkout, 'dist/.build-stamp'));
    run = await runBuiltCli(checkout, ['--version']);
    expect([run.code, entry(run, checkout)]).toEqual([0, ['src/cli/index.ts']]);
  }, 120_000);
});

describe('the fanout/worker export', () => {
  it('resolves to dist/ in an installed package, and its declarations type a user program', () => {
    const app = path.join(scratch, 'app');
    mkdirSync(path.join(app, 'node_modules'), { recursive: true });
    symlinkSync(pkg, path.join(app, 'node_modules/fanout'));
    writeFileSync(path.join(app, 'package.json'), '{"type":"module"}\n');
    const probe = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "const w = await import('fanout/worker'); console.log(import.meta.resolve('fanout/worker'), typeof w.createWorker)"],
      { cwd: app, encoding: 'utf8' },
    );
    expect(probe.status, probe.stderr).toBe(0);
    expect(probe.stdout.trim()).toBe(`file://${pkg}/dist/src/worker/public.js function`);

    writeFileSync(
      path.join(app, 'worker.ts'),
      [
        "import { createWorker, NonRetriableError } from 'fanout/worker';",
        "const worker = createWorker({ tasks: { upper: async (item: string) => { if (!item) throw new NonRetriableError('empty'); return item.toUpperCase(); } } });",
        'void worker.close();',
        '',
      ].join('\n'),
    );
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(REPO, 'node_modules/@types')] }, files: ['worker.ts'] }),
    );
    const tsc = spawnSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', app, '--traceResolution'], { cwd: app, encoding: 'utf8' });
    expect(tsc.status, tsc.stdout.split('\n').filter((l) => l.includes('error')).join('\n')).toBe(0);
    expect(tsc.stdout).toMatch(/Module name 'fanout\/worker' was successfully resolved to '[^']*\/dist\/src\/worker\/public\.d\.ts'/);
  }, 120_000);
});
