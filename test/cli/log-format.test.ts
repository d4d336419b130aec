import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/cluster.js';
import { FANOUT_BIN, REPO, spawnFanout, type FanoutProcess } from '../helpers/processes.js';

/**
 * `fanout up` logs one readable line per event to a person at a terminal (here a real
 * pseudo-terminal from util-linux `script`), JSON lines otherwise, and FANOUT_LOG_FORMAT
 * overrides either way. The last line ("stopped") is written before the process exits.
 */

const ESC = '\u001b[';
const JSON_LINE = /^\{"level":/m;
const PRETTY_STOPPED = /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: stopped \{"abandoned":\{\}/m;
const strip = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').replace(/\r/g, '');

function freshEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-logfmt-'));
  // colours follow the terminal only: nothing inherited from the test runner forces them
  return { FANOUT_DATA_DIR: dataDir, LOG_LEVEL: 'info', FORCE_COLOR: undefined, NO_COLOR: undefined, TERM: 'xterm', ...extra };
}

describe('log format of fanout up', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  it('on a terminal: readable coloured lines, and the stop line is flushed before exit', { timeout: 90_000 }, async () => {
    const env = { ...process.env, ...freshEnv() };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const command = `exec ${process.execPath} ${FANOUT_BIN} up --port 0`;
    const script = spawn('script', ['-qfec', command, '/dev/null'], { cwd: REPO, env, stdio: ['pipe', 'pipe', 'pipe'] });
    cleanups.push(() => script.kill('SIGKILL'));
    let out = '';
    script.stdout.on('data', (d) => (out += d.toString()));
    script.stderr.on('data', (d) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => script.once('exit', (code) => resolve(code)));
    await waitUntil('fanout listening', () => /listening on/.test(out), 60_000);
    // `exec` made fanout script's own child
    const fanoutPid = Number(fs.readFileSync(`/proc/${script.pid}/task/${script.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    expect(fanoutPid).toBeGreaterThan(0);
    process.kill(fanoutPid, 'SIGTERM');
    expect(await exited).toBe(0);

    expect(out).toContain(ESC);
    expect(out).not.toMatch(JSON_LINE);
    const text = strip(out);
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: fanout started \{"role":"up"/m);
    expect(text).toMatch(PRETTY_STOPPED);
  });

  async function runAndStop(extra: Record<string, string>): Promise<FanoutProcess> {
    const p = spawnFanout(['up', '--port', '0'], freshEnv(extra));
    cleanups.push(() => p.child.kill('SIGKILL'));
    await p.waitFor(/listening on/, 60_000);
    const code = await p.kill('SIGTERM');
    expect(code, `${p.child.signalCode} ${p.output()}`).toBe(0);
    return p;
  }

  it('through a pipe: JSON lines by default', { timeout: 90_000 }, async () => {
    const p = await runAndStop({});
    expect(p.output()).toMatch(/^\{"level":30,.*"msg":"fanout started"\}$/m);
    expect(p.output()).toMatch(/^\{"level":30,.*"abandoned":\{\},.*"msg":"stopped"\}$/m);
  });

  it('FANOUT_LOG_FORMAT=pretty through a pipe: readable lines without colours', { timeout: 90_000 }, async () => {
    const p = await runAndStop({ FANOUT_LOG_FORMAT: 'pretty' });
    expect(p.output()).not.toMatch(JSON_LINE);
    expect(p.output()).not.toContain(ESC);
    expect(p.output()).toMatch(PRETTY_STOPPED);
  });

  it('FANOUT_LOG_FORMAT=yaml: one line on stderr and exit code 2', { timeout: 90_000 }, async () => {
    const p = spawnFanout(['up', '--port', '0'], freshEnv({ FANOUT_LOG_FORMAT: 'yaml' }));
    const code = await new Promise((resolve) => p.child.once('exit', resolve));
    expect(code).toBe(2);
    expect(p.output().trim()).toBe('fanout: FANOUT_LOG_FORMAT must be json or pretty, got "yaml"');
  });
});
