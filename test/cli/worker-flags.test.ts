import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { taskRegistryKey } from '../../src/runtimes/queue/protocol.js';
import { spawnFanout, type FanoutProcess } from '../helpers/processes.js';
import { runCli } from './run-cli.js';

/** `fanout worker` flags and environment, through the real command: config errors and FANOUT_TASKS. */
describe('fanout worker flags', () => {
  const procs: FanoutProcess[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.kill('SIGKILL');
  });

  it.each([
    ['--exit-when-empty without --batch', ['--exit-when-empty', '--task', 'rev=rev'], {}, /^fanout: --exit-when-empty needs --batch ID \(or FANOUT_BATCH_ID\)/],
    ['--exit-when-empty without a token', ['--batch', 'b1', '--exit-when-empty', '--task', 'rev=rev'], {}, /^fanout: --exit-when-empty needs FANOUT_TOKEN/],
    ['no task at all', [], {}, /^fanout: a worker needs at least one --task NAME=COMMAND\|URL \(or FANOUT_TASKS\)/],
    ['a bad FANOUT_TASKS entry', [], { FANOUT_TASKS: 'rev=rev;oops' }, /^fanout: FANOUT_TASKS: each entry must be NAME=COMMAND\|URL, got "oops"/],
  ])('%s: exit 2 with one line', async (_name, args, env, message) => {
    const run = await runCli(['worker', '--redis', 'redis://127.0.0.1:1', ...args], { env });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('registers the tasks of FANOUT_TASKS plus those of --task', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}`;
    const worker = spawnFanout(['worker', '--task', 'shout=tr a-z A-Z', '--task', 'rev=rev -'], {
      REDIS_URL: inject('redisUrl'),
      FANOUT_REDIS_PREFIX: prefix,
      FANOUT_TASKS: 'rev=rev; hook=https://fn.internal/hook',
      FANOUT_BATCH_ID: undefined,
    });
    procs.push(worker);
    const redis = new Redis(inject('redisUrl'));
    try {
      const deadline = Date.now() + 30_000;
      let registry: Record<string, string> = {};
      while (Object.keys(registry).length < 3 && Date.now() < deadline) {
        registry = await redis.hgetall(taskRegistryKey(prefix));
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(Object.keys(registry).sort(), worker.output()).toEqual(['hook', 'rev', 'shout']);
      expect(JSON.parse(registry.hook).kind).toBe('url');
      expect(await worker.kill('SIGTERM')).toBe(0);
    } finally {
      redis.disconnect();
    }
  });
});
