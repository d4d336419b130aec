import { CommanderError } from 'commander';
import { FanoutProblemError, ServerUnreachableError } from './api.js';
import { DEFAULT_WIDTH, displayWidth, truncate, wrapLine } from './text-width.js';

/**
 * What the `fanout` command prints when something goes wrong, decided in one place: every
 * failure becomes a few lines on stderr and an exit code, never a stack trace for an expected
 * error (bad input, an API problem, an unreachable server, bad configuration).
 */

/** A user-facing failure of the CLI itself (unreadable spec file, bad arguments). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Exit code of a command line the CLI cannot run: an unknown option, a bad option value… */
export const USAGE_EXIT_CODE = 2;

/**
 * A commander parse error in our words. Commander's invalid-value message is long (`option
 * '-o, --output <format>' argument 'x' is invalid. Allowed choices are …`): it becomes one line
 * naming the flag, what it accepts and what it got. Other usage errors keep commander's text and
 * get a pointer to --help.
 */
export function formatUsageError(err: CommanderError): string[] {
  // `fanout` alone: commander has printed the help on stderr already.
  if (err.code === 'commander.help') return [];
  const invalid = /^error: option '([^']+)' argument '([\s\S]*)' is invalid\. ([\s\S]*)$/.exec(err.message);
  if (err.code === 'commander.invalidArgument' && invalid) {
    const [, flags, value, reason] = invalid as unknown as [string, string, string, string];
    const names = flags.split(/[ ,|]+/).filter((f) => f.startsWith('-')).join('/');
    const choices = /^Allowed choices are (.*)\.$/.exec(reason);
    const expected = choices ? `expected one of ${choices[1]!.split(', ').join('|')}` : reason.replace(/\.$/, '');
    const head = `error: ${names}: ${expected}`;
    // One line: the value (the user's own text) is cut, or left out, rather than the message.
    const room = DEFAULT_WIDTH - displayWidth(head) - ' (got "")'.length;
    return [room >= 5 ? `${head} (got "${truncate(value, room)}")` : head];
  }
  return [...err.message.trim().split('\n'), '(run with --help for usage)'];
}

/** The lines to print on stderr for `err`. */
export function formatError(err: unknown): string[] {
  if (err instanceof CommanderError) return formatUsageError(err);
  if (err instanceof FanoutProblemError) {
    const head = err.detail && err.detail !== err.title ? `${err.title}: ${err.detail}` : err.title;
    const lines = [`error: ${head}`];
    for (const { pointer, detail, line } of err.errors) {
      const where = line !== undefined ? (pointer ? `line ${line} ${pointer}` : `line ${line}`) : pointer || '/';
      lines.push(`  ${where}: ${detail}`);
    }
    if (err.status === 401) lines.push('  (send an API key with --api-key or FANOUT_API_KEY)');
    return lines;
  }
  if (err instanceof ServerUnreachableError || err instanceof CliError) return [`error: ${err.message}`];
  if (err instanceof Error) return [`error: ${firstLine(err.message)}`];
  return [`error: ${firstLine(String(err))}`];
}

/** Prints `err`, each line wrapped to `width`, and answers the exit code the process should end with. */
export function reportError(err: unknown, write: (text: string) => void, width = DEFAULT_WIDTH): number {
  for (const line of formatError(err)) for (const part of wrapLine(line, width, line.startsWith('  ') ? '    ' : '  ')) write(`${part}\n`);
  if (err instanceof CommanderError) return USAGE_EXIT_CODE;
  return err instanceof CliError ? err.exitCode : 1;
}

function firstLine(text: string): string {
  return text.trim().split('\n', 1)[0] ?? '';
}
