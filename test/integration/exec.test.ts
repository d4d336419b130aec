import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchTokens } from '../../src/api/tokens.js';
import { serverSecret } from '../../src/store/tenants.js';
import { FANOUT_BIN, REPO } from '../helpers/processes.js';
import { freePort } from '../helpers/redis.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { registerTaskWithoutWorker, waitUntil } from './support.js';

/**
 * `fanout exec -- CMD` as a real child process against the real service, the test playing the
 * Kubernetes job controller (JOB_COMPLETION_INDEX). The batch is a queue batch whose task has no
 * worker: its items are released (running, attempt 1) and wait, so the result PUT of exec is
 * what records them.
 */

interface ExecRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
}

/** Starts `node bin/fanout.js exec …` with exactly `env` on top of PATH and HOME. */
function startExec(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [FANOUT_BIN, 'exec', ...args], {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = once(child, 'close').then(([code, signal]) => ({ code, signal, stdout, stderr }) as ExecRun);
  return { child, done, stderr: () => stderr };
}

const runExec = (args: string[], env: Record<string, string>) => startExec(args, env).done;

describe('fanout exec', () => {
  let svc: TestService;
  let batch: any;
  let other: any;
  let token: string;
  let otherToken: string;
  const apple = { name: 'apple', url: 'http://dbpedia.org/resource/Apple' };
  const items = [
    'hello',
    apple,
    'offset',
    'exit-code',
    'term-trapped',
    'term-default',
    'big',
    'stale',
    { name: 'banana' },
  ];
  const envFor = (index: number, extra: Record<string, string> = {}) => ({
    FANOUT_API_URL: svc.url,
    FANOUT_BATCH_ID: batch.id,
    FANOUT_TOKEN: token,
    JOB_COMPLETION_INDEX: String(index),
    ...extra,
  });
  const item = async (i: number) => (await svc.client.json('GET', `/v1/batches/${batch.id}/items/${i}`)).body;

  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), workers: false });
    await registerTaskWithoutWorker(svc, 'ext');
    batch = await svc.client.createBatch({ task: 'ext', items });
    other = await svc.client.createBatch({ task: 'ext', items: ['x'] });
    const tokens = batchTokens(await svc.service.store.write(serverSecret()));
    token = tokens.sign(batch.id);
    otherToken = tokens.sign(other.id);
    await waitUntil(async () => (await svc.client.getBatch(batch.id)).status.counts.running === items.length, 'items to be released');
  });
  afterAll(async () => svc?.close());

  it('runs CMD with the item on stdin and records its stdout as the result', async () => {
    const run = await runExec(['--', 'rev'], envFor(0));
    expect(run, run.stderr).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(await item(0)).toMatchObject({ status: 'succeeded', result: 'olleh' });
  });

  it('fills {{ field }} and {{ index }} in ARGS; an object item arrives as JSON; CMD gets FANOUT_ITEM_INDEX but not the token', async () => {
    const script = 'printf "%s|%s|%s|%s" "$1" "$2" "$(cat)" "$FANOUT_ITEM_INDEX ${FANOUT_TOKEN:-no-token}"';
    const run = await runExec(['--', 'sh', '-c', script, 'sh', 'fetch {{ url }}', '{{ name }} #{{ index }}'], envFor(1));
    expect(run.code, run.stderr).toBe(0);
    expect((await item(1)).result).toBe(`fetch ${apple.url}|apple #1|${JSON.stringify(apple)}|1 no-token`);
  });

  it('echo "{{ name }}": the expansion pattern without a shell', async () => {
    const run = await runExec(['--', 'echo', 'Processing {{ name }}'], envFor(8));
    expect(run.code, run.stderr).toBe(0);
    expect((await item(8)).result).toBe('Processing banana');
  });

  it('the item index is FANOUT_INDEX_OFFSET + JOB_COMPLETION_INDEX', async () => {
    const run = await runExec(['--', 'sh', '-c', 'echo "$FANOUT_ITEM_INDEX:$(cat)"'], envFor(0, { FANOUT_INDEX_OFFSET: '2' }));
    expect(run.code, run.stderr).toBe(0);
    expect((await item(2)).result).toBe('2:offset');
  });

  it("exits with CMD's exit code, passes stderr through, and records nothing", async () => {
    const run = await runExec(['--', 'sh', '-c', 'echo partial; echo something broke >&2; exit 3'], envFor(3));
    expect(run.code).toBe(3);
    expect(run.stderr).toBe('something broke\n');
    const after = await item(3);
    expect(after.status).toBe('running');
    expect(after.result ?? null).toBeNull();
  });

  it('forwards SIGTERM to CMD and exits with its code', async () => {
    const exec = startExec(['--', 'sh', '-c', 'trap "echo got TERM >&2; exit 7" TERM; echo ready >&2; while :; do sleep 0.05; done'], envFor(4));
    await waitUntil(async () => exec.stderr().includes('ready'), 'CMD to start', 20_000, 20);
    exec.child.kill('SIGTERM');
    const run = await exec.done;
    expect(run).toMatchObject({ code: 7, signal: null });
    expect(run.stderr).toContain('got TERM');
    expect((await item(4)).status).toBe('running');
  });

  it('a CMD killed by a signal: exit 128 + signo', async () => {
    const exec = startExec(['--', 'sh', '-c', 'echo ready >&2; exec sleep 30'], envFor(5));
    await waitUntil(async () => exec.stderr().includes('ready'), 'CMD to start', 20_000, 20);
    exec.child.kill('SIGTERM');
    expect(await exec.done).toMatchObject({ code: 128 + 15, signal: null });
    expect(await runExec(['--', 'sh', '-c', 'kill -KILL $$'], envFor(5))).toMatchObject({ code: 128 + 9 });
    expect((await item(5)).status).toBe('running');
  });

  it('streams a result larger than memory holds to the API', async () => {
    const bytes = 3 * 1024 * 1024;
    const run = await runExec(['--', 'sh', '-c', `head -c ${bytes} /dev/zero | tr '\\0' a; echo`], envFor(6));
    expect(run.code, run.stderr).toBe(0);
    const line = (await svc.client.results(batch.id))[6];
    expect(line.status).toBe('succeeded');
    expect(line.result).toHaveLength(bytes);
    expect(line.result).toMatch(/^a+$/);
  });

  it('a result for an attempt that is already recorded is not recorded again: a note, exit 0', async () => {
    const first = await runExec(['--', 'cat'], envFor(7));
    expect(first.code, first.stderr).toBe(0);
    const again = await runExec(['--', 'sh', '-c', 'echo overwrite'], envFor(7));
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/^fanout exec: the result of item 7 of batch \S+ was not recorded/);
    expect((await item(7)).result).toBe('stale');
  });

  it("another batch's token: exit 1 with one line, the token never printed, CMD never run", async () => {
    const run = await runExec(['--', 'sh', '-c', 'echo ran >&2'], envFor(0, { FANOUT_TOKEN: otherToken }));
    expect(run.code).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^fanout exec: could not read the input of item 0 of batch \S+: .*403.*not valid for this batch/);
    expect(run.stderr).not.toContain(otherToken);
    expect(run.stderr).not.toContain(otherToken.slice(4, 20));
  });

  it('an item that does not exist: exit 1 at once (404 is not retried)', async () => {
    const started = Date.now();
    const run = await runExec(['--', 'cat'], envFor(99));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/could not read the input of item 99 .*404/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('an API that does not answer: retried within FANOUT_EXEC_RETRY_SECONDS, then exit 1', async () => {
    const closed = await freePort();
    const run = await runExec(['--', 'cat'], envFor(0, { FANOUT_API_URL: `http://127.0.0.1:${closed}`, FANOUT_EXEC_RETRY_SECONDS: '2' }));
    expect(run.code).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.slice(0, -1).every((l) => /^fanout exec: .*ECONNREFUSED.*; retrying in \d+\.\d s$/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/^fanout exec: could not read the input of item 0 of batch \S+: GET \/v1\/batches\/\S+\/items\/0\/input failed after \d+ tries: .*ECONNREFUSED/);
    expect(run.stderr).not.toContain(token);
  });

  it('a placeholder the item lacks: exit 1 with the reason', async () => {
    const run = await runExec(['--', 'echo', '{{ missing }}'], envFor(0));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^fanout exec: cannot fill the command for item 0 of batch \S+: item 0 has no field "missing"/);
  });

  it('a CMD that does not exist: 127', async () => {
    const run = await runExec(['--', 'no-such-command-xyz'], envFor(3));
    expect(run.code).toBe(127);
    expect(run.stderr).toMatch(/cannot run "no-such-command-xyz": command not found/);
  });

  it('missing environment or no CMD: exit 2 with one clear line', async () => {
    const missing = await runExec(['--', 'cat'], { FANOUT_TOKEN: token, FANOUT_BATCH_ID: batch.id });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^fanout exec: missing environment: FANOUT_API_URL, JOB_COMPLETION_INDEX \(.*\)\n$/);
    expect(missing.stderr).not.toContain(token);
    const noCmd = await runExec([], envFor(0));
    expect(noCmd.code).toBe(2);
    expect(noCmd.stderr).toMatch(/^fanout exec: no command given; usage: fanout exec -- CMD \[ARGS\.\.\.\]\n$/);
    const badIndex = await runExec(['--', 'cat'], envFor(0, { JOB_COMPLETION_INDEX: 'x' }));
    expect(badIndex.code).toBe(2);
  });
});
