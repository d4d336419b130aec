import { CommanderError } from 'commander';
import { reportError } from './errors.js';
import { buildProgram } from './program.js';
import { outputWidth } from './text-width.js';

/**
 * Entry point of the `fanout` command (bin/fanout.js loads its compiled dist/src/cli/index.js, or this source through tsx when dist/ is stale). Any error a command
 * throws ends here and becomes a few lines on stderr, fitted to the output width, and exit code
 * 1 (2 for a command line that cannot be run), never a stack trace.
 */
// `fanout get batches | head` closes the pipe early: that ends the output, it is not a failure.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  // --help and --version end the parse by throwing too (exitOverride), with exit code 0.
  if (err instanceof CommanderError && err.exitCode === 0) process.exitCode = 0;
  else process.exitCode = reportError(err, (text) => process.stderr.write(text), outputWidth(process.env.COLUMNS));
}
