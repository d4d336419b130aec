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

/** Runs `stop` once on SIGINT/SIGTERM, then exits. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    stop()
      .catch((err) => process.stderr.write(`fanout: error while stopping: ${(err as Error).message}\n`))
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 0));
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}
