import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { spawnCommand } from '../../src/worker/command-spawner.js';

describe('command spawner helper', () => {
  it('holds a command back while its stdout is not taken, then delivers all of it', async () => {
    const total = 50_000_000;
    const cmd = spawnCommand('head', ['-c', String(total), '/dev/zero'], process.env, '');
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
});
