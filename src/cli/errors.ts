import { ApiProblemError, ServerUnreachableError } from './client.js';

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

/** The lines to print on stderr for `err`. */
export function formatError(err: unknown): string[] {
  if (err instanceof ApiProblemError) {
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

/** Prints `err` and answers the exit code the process should end with. */
export function reportError(err: unknown, write: (text: string) => void): number {
  for (const line of formatError(err)) write(`${line}\n`);
  return err instanceof CliError ? err.exitCode : 1;
}

function firstLine(text: string): string {
  return text.trim().split('\n', 1)[0] ?? '';
}
