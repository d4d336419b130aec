import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { runCli } from './run-cli.js';

/**
 * `fanout retry ID` and `fanout logs ID --index N` as real child processes against the real
 * service: a task that writes to stderr and exits 3 gives failed attempts to retry and read.
 */

let svc: TestService;
let env: Record<string, string>;

beforeAll(async () => {
  svc = await startTestService({
    redisUrl: inject('redisUrl'),
    tasks: ['echo=cat', 'boom=sh -c "echo boom-$(cat) >&2; exit 3"'],
  });
  env = { FANOUT_SERVER: svc.url, FANOUT_API_KEY: svc.apiKey };
});
afterAll(async () => {
  await svc?.close();
});

async function failedBatch(backoffLimitPerItem = 0): Promise<string> {
  const b = await svc.client.createBatch({ task: 'boom', items: ['x', 'y'], retry: { backoffLimitPerItem, backoffSeconds: 0 } });
  const final = await svc.client.waitForPhase(b.id);
  expect(final.status.phase).toBe('Failed');
  return b.id as string;
}

describe('fanout retry ID', () => {
  it('re-runs the failed items of a finished batch and prints the batch', async () => {
    const id = await failedBatch();
    const run = await runCli(['retry', id], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^batch ${id} retry requested \\(phase \\w+\\)\\n$`));
    expect(run.stderr).toBe('');
    const final = await svc.client.waitForPhase(id);
    expect(final.status.phase).toBe('Failed');
    const item = await (await svc.client.request('GET', `/v1/batches/${id}/items/0`)).json();
    expect(item.attempts.length).toBe(2);
  });

  it('prints the 409 problem detail and exits non-zero when the phase does not allow retry', async () => {
    const ok = await svc.client.createBatch({ task: 'echo', items: ['x'] });
    expect((await svc.client.waitForPhase(ok.id)).status.phase).toBe('Succeeded');
    const run = await runCli(['retry', ok.id], { env });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('error: Conflict: cannot retry a batch that is Succeeded: it has no failed items\n');

    const missing = await runCli(['retry', 'bnothere0000'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('error: Not Found: batch bnothere0000 not found\n');
  });
});

describe('fanout logs ID --index N', () => {
  it("prints each attempt's header and stderr tail", async () => {
    const id = await failedBatch(1);
    const run = await runCli(['logs', id, '--index', '1'], { env });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^attempt 1 · failed · exit 3 · \d{4}-\d\d-\d\dT/);
    expect(lines[1]).toBe('boom-y');
    expect(lines[2]).toMatch(/^attempt 2 · failed · exit 3 · \d{4}-/);
    expect(lines[3]).toBe('boom-y');

    const one = await runCli(['logs', id, '--index', '1', '--attempt', '2'], { env });
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/^attempt 2 · failed · exit 3 · \S+\nboom-y\n$/);

    const noAttempt = await runCli(['logs', id, '--index', '1', '--attempt', '7'], { env });
    expect(noAttempt.code).not.toBe(0);
    expect(noAttempt.stderr).toBe(`error: item 1 of batch ${id} has no attempt 7\n`);
  });

  it("exits non-zero with the problem's detail for a missing batch or item", async () => {
    const id = await failedBatch();
    const item = await runCli(['logs', id, '--index', '99'], { env });
    expect(item.code).not.toBe(0);
    expect(item.stdout).toBe('');
    expect(item.stderr).toMatch(/^error: Not Found: .*\b99\b.*\n$/);
    const batch = await runCli(['logs', 'bnothere0000', '--index', '0'], { env });
    expect(batch.code).not.toBe(0);
    expect(batch.stderr).toBe('error: Not Found: batch not found\n');
    const bad = await runCli(['logs', id, '--index', 'one'], { env });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('expected a whole number 0 or more');
  });
});
