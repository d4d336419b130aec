import { ConfigError } from '../config/config.js';

/** Bad configuration stops start-up with one clear line and exit code 2. */
export function exitOnConfigError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ConfigError || (err as Error).name === 'TaskFlagError') {
      process.stderr.write(`fanout: ${(err as Error).message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
