import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { runCli } from './run-cli.js';

/** `fanout completion bash|zsh`, run as the real CLI: every command and option is in the script, and bash accepts it. */

const program = buildProgram();
const commandNames = program.commands.map((c) => c.name());
let dir: string;
let bashScript: string;
let zshScript: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-completion-'));
  const [bash, zsh] = await Promise.all([runCli(['completion', 'bash']), runCli(['completion', 'zsh'])]);
  expect(bash.code, bash.stderr).toBe(0);
  expect(zsh.code, zsh.stderr).toBe(0);
  bashScript = bash.stdout;
  zshScript = zsh.stdout;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Sources the bash script and completes `fanout <words…>` with the cursor on the last word. */
function complete(words: string[]): string[] {
  const file = join(dir, 'fanout.bash');
  writeFileSync(file, bashScript);
  const line = ['fanout', ...words];
  const quoted = line.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  const run = spawnSync('bash', ['-c', `source "$1"; COMP_WORDS=(${quoted}); COMP_CWORD=${line.length - 1}; _fanout_completion; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', file], {
    encoding: 'utf8',
  });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout.split('\n').filter(Boolean);
}

describe('fanout completion bash', () => {
  it('is valid bash (bash -n) and registers the completion function', () => {
    const file = join(dir, 'syntax.bash');
    writeFileSync(file, bashScript);
    const check = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    expect(bashScript).toContain('complete -o default -F _fanout_completion fanout');
  });

  it('lists every command of the program, the new ones included', () => {
    expect(commandNames).toEqual(expect.arrayContaining(['submit', 'wait', 'get', 'retry', 'logs', 'completion']));
    expect(complete([''])).toEqual(expect.arrayContaining([...commandNames, '--help', '--version']));
    expect(complete(['re'])).toEqual(['results', 'retry']);
  });

  it("offers each command's own options, and the choices of an option's value", () => {
    for (const cmd of program.commands) {
      const offered = complete([cmd.name(), '-']);
      for (const option of cmd.options) expect(offered, cmd.name()).toContain(option.long);
      expect(offered).toContain('--help');
    }
    expect(complete(['logs', '--'])).toEqual(expect.arrayContaining(['--index', '--attempt', '--server', '--api-key']));
    expect(complete(['get', 'batches', '-o', ''])).toEqual(['table', 'wide', 'json', 'yaml', 'name']);
    expect(complete(['get', 'batches', '-o', 'y'])).toEqual(['yaml']);
    expect(complete(['logs', 'b1', '--index', ''])).toEqual([]); // a value: nothing offered
  });
});

describe('fanout completion zsh', () => {
  it('lists every command and option', () => {
    expect(zshScript.startsWith('#compdef fanout\n')).toBe(true);
    for (const cmd of program.commands) {
      expect(zshScript).toContain(`'${cmd.name()}:`);
      for (const option of cmd.options) expect(zshScript).toContain(option.long!);
    }
    expect(zshScript).toContain('compdef _fanout fanout');
  });

});

it('refuses an unknown shell with one line and exit 1', async () => {
  const run = await runCli(['completion', 'fish']);
  expect(run).toMatchObject({ code: 1, stdout: '', stderr: 'error: unknown shell "fish": use bash or zsh\n' });
});
