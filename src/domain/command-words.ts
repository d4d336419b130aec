/**
 * Whether an operator's command can run without a shell. `/bin/sh -c COMMAND` costs a second
 * exec per item; a command made only of plain words means the same thing when its first word is
 * run directly with the rest as arguments. The detector is conservative: anything that a shell
 * could read differently (quotes, `$`, globs, redirections, pipes, `~`, tabs, newlines, a leading
 * `NAME=value` assignment, a builtin or keyword) keeps the shell.
 */

/** Characters a plain word may hold: none of them means anything special to sh. */
const PLAIN_COMMAND = /^[A-Za-z0-9\-_./=:,@%+ ]+$/;

/**
 * Words sh handles itself, and reserved words: builtins with no program of the same name, and
 * those whose program can answer differently (dash's `echo -e x` prints `-e x`, coreutils'
 * prints `x`). Only `true` and `false` are left to their programs: always the same exit code.
 */
const SHELL_WORDS = new Set([
  'echo', 'kill', 'printf', 'pwd', 'test',
  '.', ':', 'alias', 'bg', 'break', 'cd', 'command', 'continue', 'eval', 'exec', 'exit', 'export',
  'fc', 'fg', 'getopts', 'hash', 'jobs', 'local', 'read', 'readonly', 'return', 'set', 'shift',
  'times', 'trap', 'type', 'ulimit', 'umask', 'unalias', 'unset', 'wait',
  'case', 'do', 'done', 'elif', 'else', 'esac', 'fi', 'for', 'function', 'if', 'in', 'select',
  'then', 'until', 'while',
]);

/**
 * The program and its arguments when `command` can be run without a shell, or null when it must
 * go through `/bin/sh -c`.
 */
export function plainCommandWords(command: string): string[] | null {
  if (!PLAIN_COMMAND.test(command)) return null;
  const words = command.split(' ').filter((word) => word !== '');
  if (words.length === 0) return null;
  const program = words[0];
  // `NAME=value cmd` sets a variable; `-x` is not a program name sh would run either
  if (program.includes('=') || program.startsWith('-')) return null;
  if (SHELL_WORDS.has(program)) return null;
  return words;
}
