import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO } from './processes.js';

/**
 * Runs one of the test suites' build scripts (test/kubernetes/build.sh, test/s3/build.sh: a
 * no-op when their cache is warm, many minutes cold) and answers the `key=value` lines it prints
 * on stdout. Its progress on stderr is passed through; a failure throws with the last 30 lines,
 * so the suites that need the binaries fail rather than skip.
 */
export async function runBuildScript(script: string): Promise<Record<string, string>> {
  const name = path.relative(REPO, script);
  const child = spawn('sh', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-8000);
    process.stderr.write(chunk);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${name} failed (exit ${code}):\n${stderr.split('\n').slice(-30).join('\n')}`);
  const values: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return values;
}
