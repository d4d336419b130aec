import { reportError } from './errors.js';
import { buildProgram } from './program.js';

/**
 * Entry point of the `fanout` command (bin/fanout.js loads it through tsx). Any error a command
 * throws ends here and becomes a few lines on stderr and exit code 1, never a stack trace.
 */
try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  process.exitCode = reportError(err, (text) => process.stderr.write(text));
}
