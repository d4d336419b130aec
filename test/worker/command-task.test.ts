import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useWorkerHarness } from './harness.js';
import { parseTaskFlag } from '../../src/worker/index.js';

const t = useWorkerHarness();

describe('command tasks', () => {
  it('runs rev over string items and reports stdout without its trailing newline', async () => {
    await t.h.worker({ tasks: [parseTaskFlag('rev=rev')] });
    const lease = await t.h.lease('rev', ['foo', 'bar', 'apple']);
    const items = await t.h.waitForItems(3, lease.leaseId);
    expect(items.map((item) => [item.i, item.a, item.outcome, item.result, item.exitCode])).toEqual([
      [0, 1, 'succeeded', 'oof', 0],
      [1, 1, 'succeeded', 'rab', 0],
      [2, 1, 'succeeded', 'elppa', 0],
    ]);
    for (const item of items) {
      expect(item.error).toBeUndefined();
      expect(item.worker).toBeTruthy();
      expect(item.finishedAt! >= item.startedAt!).toBe(true);
    }
  });

  it('gives a string item raw on stdin and anything else as JSON, removing only one newline', async () => {
    await t.h.worker({ tasks: [parseTaskFlag('cat=cat'), parseTaskFlag(`nl=printf 'a\\n\\n'`)] });
    const lease = await t.h.lease('cat', ['plain "text"\n', { a: 1, b: [true, null] }, 42, null]);
    const items = await t.h.waitForItems(4, lease.leaseId);
    expect(items.map((item) => item.result)).toEqual(['plain "text"', '{"a":1,"b":[true,null]}', '42', 'null']);
    const nl = await t.h.lease('nl', ['x']);
    expect((await t.h.waitForItems(1, nl.leaseId))[0].result).toBe('a\n');
  });

  it('fails with the exit code and the stdin it read', async () => {
    await t.h.worker({ tasks: [parseTaskFlag(`catfail=cat; echo "bad thing" >&2; exit 3`)] });
    const lease = await t.h.lease('catfail', ['hello']);
    const [item] = await t.h.waitForItems(1, lease.leaseId);
    expect(item).toMatchObject({ outcome: 'failed', exitCode: 3, error: 'bad thing' });
    expect(item.result).toBeUndefined();
  });

  it('sets FANOUT_* and JOB_COMPLETION_INDEX, adds the item env, and never lets it override them', async () => {
    const command = 'echo "$FANOUT_BATCH_ID|$FANOUT_ITEM_INDEX|$JOB_COMPLETION_INDEX|$FANOUT_ATTEMPT|$URL|$PATH"';
    await t.h.worker({ tasks: [{ kind: 'command', name: 'env', command }] });
    const lease = await t.h.lease('env', ['a', 'b'], {
      batchId: 'batch-env',
      first: 3,
      attempt: 2,
      env: { '3': { URL: 'http://x/3', FANOUT_ITEM_INDEX: '999', JOB_COMPLETION_INDEX: '999' }, '4': { URL: 'http://x/4' } },
    });
    const items = await t.h.waitForItems(2, lease.leaseId);
    const [batch, index, completion, attempt, url, path] = String(items[0].result).split('|');
    expect([batch, index, completion, attempt, url]).toEqual(['batch-env', '3', '3', '2', 'http://x/3']);
    expect(path).toBe(process.env.PATH);
    expect(String(items[1].result).split('|').slice(0, 5)).toEqual(['batch-env', '4', '4', '2', 'http://x/4']);
  });

  it('keeps only the last 4 KiB of stderr as the error', async () => {
    const command = `head -c 10000 /dev/zero | tr '\\0' x >&2; echo END >&2; exit 7`;
    await t.h.worker({ tasks: [{ kind: 'command', name: 'noisy', command }] });
    const lease = await t.h.lease('noisy', ['x']);
    const [item] = await t.h.waitForItems(1, lease.leaseId);
    expect(item.outcome).toBe('failed');
    expect(item.exitCode).toBe(7);
    expect(item.error!.length).toBeLessThanOrEqual(4096);
    expect(item.error!.length).toBeGreaterThan(4000);
    expect(item.error!.endsWith('xxxxEND')).toBe(true);
  });

  it('reports a command killed by a signal as 128 + signo', async () => {
    await t.h.worker({ tasks: [{ kind: 'command', name: 'suicide', command: 'kill -9 $$' }] });
    const lease = await t.h.lease('suicide', ['x']);
    const [item] = await t.h.waitForItems(1, lease.leaseId);
    expect(item).toMatchObject({ outcome: 'failed', exitCode: 137 });
  });

  it('times out with SIGTERM, then SIGKILL for a command that ignores it', async () => {
    await t.h.worker({
      tasks: [
        { kind: 'command', name: 'slow', command: 'sleep 30' },
        { kind: 'command', name: 'stubborn', command: `trap '' TERM; sleep 30; echo never` },
      ],
    });
    const started = Date.now();
    const slow = await t.h.lease('slow', ['x'], { timeoutMs: 300 });
    const stubborn = await t.h.lease('stubborn', ['x'], { timeoutMs: 300 });
    const [slowItem] = await t.h.waitForItems(1, slow.leaseId);
    expect(slowItem).toMatchObject({ outcome: 'failed', condition: 'Timeout' });
    expect(slowItem.exitCode).toBeUndefined();
    expect(slowItem.error).toContain('timed out after 300 ms');
    expect(slowItem.finishedAt! - slowItem.startedAt!).toBeLessThan(1500);
    const [stubbornItem] = await t.h.waitForItems(1, stubborn.leaseId);
    expect(stubbornItem).toMatchObject({ outcome: 'failed', condition: 'Timeout' });
    const took = stubbornItem.finishedAt! - stubbornItem.startedAt!;
    expect(took).toBeGreaterThanOrEqual(2200);
    expect(took).toBeLessThan(5000);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  describe('without a shell when the command is plain words', () => {
    /** pid, ppid and process group of the process that read /proc/self/stat */
    const statOf = (result: unknown) => {
      const fields = String(result).slice(String(result).lastIndexOf(')') + 2).split(' ');
      const pid = Number(String(result).split(' ')[0]);
      return { pid, ppid: Number(fields[1]), pgrp: Number(fields[2]) };
    };

    it('runs a plain command as a direct child of the spawner helper in its own process group, and a shell command under sh', async () => {
      await t.h.worker({
        tasks: [
          { kind: 'command', name: 'direct', command: 'cat /proc/self/stat' },
          { kind: 'command', name: 'shell', command: 'cat /proc/self/stat | cat' },
        ],
      });
      const direct = await t.h.lease('direct', ['x']);
      const [d] = await t.h.waitForItems(1, direct.leaseId);
      expect(d.outcome).toBe('succeeded');
      const ds = statOf(d.result);
      // the parent is the worker's spawner helper (a node process, still running), not sh
      expect(readFileSync(`/proc/${ds.ppid}/comm`, 'utf8').trim()).toBe('node');
      expect(readFileSync(`/proc/${ds.ppid}/stat`, 'utf8').split(' ')[3]).toBe(String(process.pid));
      expect(ds.pgrp).toBe(ds.pid);
      const shell = await t.h.lease('shell', ['x']);
      const [s] = await t.h.waitForItems(1, shell.leaseId);
      expect(s.outcome).toBe('succeeded');
      // cat is sh's child, in the group sh leads
      const ss = statOf(s.result);
      expect(ss.ppid).not.toBe(ds.ppid);
      expect(ss.pgrp).not.toBe(ss.pid);
    });

    it('gives the same results, exit codes and stderr as the same command through sh', async () => {
      // each pair: a plain command and the same one with quotes, which keep the shell
      const pairs: [string, string][] = [
        ['tr a-z A-Z', "tr 'a-z' 'A-Z'"],
        ['false', "'false'"],
        ['ls /nonexistent-fanout-dir', "ls '/nonexistent-fanout-dir'"],
      ];
      const tasks = pairs.flatMap(([plain, quoted], k) => [
        { kind: 'command' as const, name: `plain${k}`, command: plain },
        { kind: 'command' as const, name: `quoted${k}`, command: quoted },
      ]);
      await t.h.worker({ tasks });
      for (let k = 0; k < pairs.length; k++) {
        const a = await t.h.lease(`plain${k}`, ['hello', { n: 1 }]);
        const b = await t.h.lease(`quoted${k}`, ['hello', { n: 1 }]);
        const pick = (items: Awaited<ReturnType<typeof t.h.waitForItems>>) =>
          items.map((item) => [item.i, item.outcome, item.result, item.exitCode, item.error]);
        const plain = pick(await t.h.waitForItems(2, a.leaseId));
        expect(plain).toEqual(pick(await t.h.waitForItems(2, b.leaseId)));
        if (k === 0) expect(plain.map((p) => p[2])).toEqual(['HELLO', '{"N":1}']);
        if (k > 0) expect(plain.every((p) => p[1] === 'failed' && typeof p[3] === 'number' && p[3] > 0)).toBe(true);
      }
    });

    it('fails an item whose program does not exist with exit code 127, as sh does', async () => {
      await t.h.worker({
        tasks: [
          { kind: 'command', name: 'missing', command: 'no-such-program-fanout --flag' },
          { kind: 'command', name: 'missingsh', command: "no-such-program-fanout '--flag'" },
        ],
      });
      const direct = await t.h.lease('missing', ['x']);
      const [d] = await t.h.waitForItems(1, direct.leaseId);
      expect(d).toMatchObject({ outcome: 'failed', exitCode: 127, error: 'no-such-program-fanout: command not found' });
      const shell = await t.h.lease('missingsh', ['x']);
      const [s] = await t.h.waitForItems(1, shell.leaseId);
      expect(s).toMatchObject({ outcome: 'failed', exitCode: 127 });
      expect(s.error).toContain('no-such-program-fanout');
    });
  });
});
