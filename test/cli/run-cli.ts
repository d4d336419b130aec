import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The launcher users run; tests go through it so the tsx wiring is exercised too. */
export const FANOUT_BIN = fileURLToPath(new URL('../../bin/fanout.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node bin/fanout.js ...args` as a real child process. Asynchronous on purpose: the fake
 * API the CLI talks to lives in this same test process and must keep serving meanwhile.
 */
export function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string; cwd?: string } = {},
): Promise<CliRun> {
  // Start from a clean slate: no FANOUT_* leaking in from the developer's shell.
  const env: Record<string, string | undefined> = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('FANOUT_')),
  );
  Object.assign(env, options.env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FANOUT_BIN, ...args], { env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}
