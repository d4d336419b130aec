import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCommand, type SpawnedCommand } from '../../src/worker/command-spawner.js';

async function outputOf(cmd: SpawnedCommand): Promise<{ exit: unknown; out: string; err: string }> {
  let out = '';
  let err = '';
  cmd.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  cmd.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exit = await cmd.exited;
  return { exit, out, err };
}

describe('command spawner helper', () => {
  it('holds a command back while its stdout is not taken, then delivers all of it', async () => {
    const total = 50_000_000;
    const cmd = spawnCommand('head', ['-c', String(total), '/dev/zero'], {}, '');
    cmd.stderr.resume();
    await sleep(700);
    // nothing read yet: what arrived is bounded by the helper's 1 MiB window (plus a chunk or two)
    const arrived = cmd.stdout.readableLength + cmd.stdout.writableLength;
    expect(arrived).toBeGreaterThan(0);
    expect(arrived).toBeLessThan(2 * 1024 * 1024);
    let bytes = 0;
    cmd.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
    const exit = await cmd.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(bytes).toBe(total);
  });

  const dirs = mkdtempSync(join(tmpdir(), 'fanout-spawner-test-'));
  afterAll(() => rmSync(dirs, { recursive: true, force: true }));
  /** a directory of its own holding an executable `tool` that prints `name` */
  function toolIn(name: string): string {
    const dir = join(dirs, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'tool'), `#!/bin/sh\necho ${name}\n`);
    chmodSync(join(dir, 'tool'), 0o755);
    return dir;
  }

  it('looks a bare program name up in the PATH the item has, each PATH apart', async () => {
    const one = toolIn('one');
    const two = toolIn('two');
    expect(await outputOf(spawnCommand('tool', [], { PATH: one }, ''))).toEqual({ exit: { code: 0, signal: null }, out: 'one\n', err: '' });
    expect((await outputOf(spawnCommand('tool', [], { PATH: `${two}:${one}` }, ''))).out).toBe('two\n');
    expect((await outputOf(spawnCommand('tool', [], { PATH: one }, ''))).out).toBe('one\n');
    // not on this PATH: not found, as execvp says
    const missing = await outputOf(spawnCommand('tool', [], { PATH: dirs }, ''));
    expect(missing.exit).toMatchObject({ spawnError: { code: 'ENOENT' } });
  });

  it('keeps argv[0] as the command wrote it, and gives the worker environment with the item env added', async () => {
    const run = await outputOf(spawnCommand('sh', ['-c', 'echo "$0 $FANOUT_SPAWNER_TEST ${HOME:+home}"'], { FANOUT_SPAWNER_TEST: 'added' }, ''));
    expect(run).toEqual({ exit: { code: 0, signal: null }, out: `sh added ${process.env.HOME ? 'home' : ''}\n`, err: '' });
  });

  it('delivers small and large outputs, stdout and stderr, whole', async () => {
    for (const bytes of [0, 1, 65_535, 65_536, 300_000]) {
      const run = await outputOf(spawnCommand('sh', ['-c', `head -c ${bytes} /dev/zero | tr '\\0' o; head -c ${bytes} /dev/zero | tr '\\0' e >&2`], {}, ''));
      expect(run.exit).toEqual({ code: 0, signal: null });
      expect([run.out.length, run.err.length]).toEqual([bytes, bytes]);
    }
  });
});
