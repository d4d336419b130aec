import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO } from '../helpers/processes.js';
import { startTestService, type TestService } from '../helpers/service.js';

/**
 * Property-based fuzzing of the whole HTTP API with schemathesis (pinned in
 * test/python/requirements.txt, installed in .cache/python by `npm run setup`): it reads the
 * service's own /openapi.yaml, generates valid and invalid requests for every operation, and
 * fails on any 5xx, any answer that breaks its declared schema, content type or headers, any
 * undocumented status, a schema-invalid request that is accepted, auth that is ignored, and an
 * unsupported method that does not answer 405 with Allow.
 *
 * Every check runs. `positive_data_acceptance` (a schema-valid request must be accepted) is told
 * which refusals of schema-valid data are right (schemathesis.toml): validity also depends on the
 * server's state and configuration, which no schema can state: the task must be registered by a
 * worker, a webhook URL must pass the address policy (here nothing but 127.0.0.1 does), a cron
 * expression and a time zone must exist (declared 422s); an id must exist (404); a transition
 * must be allowed in the batch's phase (409).
 *
 * Reproducible but broad: the seed is fixed (FUZZ_SEED below), so a red run is a regression
 * anyone can replay, not a new random find blocking an unrelated change. Set FANOUT_FUZZ_SEED
 * (and FANOUT_FUZZ_EXAMPLES) to explore further; every run prints its seed.
 *
 * Nothing leaves 127.0.0.1: the fuzzer targets the service there, and the service calls only
 * what FANOUT_WEBHOOK_ALLOW names (127.0.0.1) because FANOUT_WEBHOOK_ALLOW_PUBLIC=false; any
 * other host name is refused before it is resolved. Its only worker tasks are the local commands
 * `rev` and `cat` (no URL task), and it has no Kubernetes configuration.
 */

const VENV_BIN = path.join(REPO, '.cache/python/bin');
const SCHEMATHESIS = path.join(VENV_BIN, 'schemathesis');
const FUZZ_SEED = Number(process.env.FANOUT_FUZZ_SEED || 20261203);
const EXAMPLES = Number(process.env.FANOUT_FUZZ_EXAMPLES || 50);
/** vitest's bound on the whole run; schemathesis itself stops after EXAMPLES per operation and phase */
const RUN_TIMEOUT_MS = 8 * 60_000;

/** The server admin key of the service under test (the admin API's pass uses it). */
const ADMIN_KEY = `admin-${randomBytes(16).toString('hex')}`;

let svc: TestService | undefined;
let tmp: string | undefined;

function requireSchemathesis(): void {
  if (!fs.existsSync(SCHEMATHESIS)) throw new Error(`no schemathesis in ${VENV_BIN}: run npm run setup`);
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // hooks.py (loaded by name from PYTHONPATH) teaches schemathesis to send NDJSON bodies.
    const env = { ...process.env, NO_COLOR: '1', PYTHONDONTWRITEBYTECODE: '1', SCHEMATHESIS_HOOKS: 'hooks', PYTHONPATH: path.join(REPO, 'test/fuzz') };
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('schemathesis against the running service', () => {
  beforeAll(async () => {
    svc = await startTestService({
      redisUrl: inject('redisUrl'),
      env: { FANOUT_WEBHOOK_ALLOW: '127.0.0.1', FANOUT_WEBHOOK_ALLOW_PUBLIC: 'false', FANOUT_KUBERNETES: 'off', FANOUT_ADMIN_KEY: ADMIN_KEY },
    });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-fuzz-'));
  });
  afterAll(async () => {
    await svc?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('the service listens on 127.0.0.1 and may call nothing but 127.0.0.1', async () => {
    expect(new URL(svc!.url).hostname).toBe('127.0.0.1');
    for (const target of ['https://8.8.8.8/hook', 'https://example.com/hook', 'http://[2606:4700::1111]/hook']) {
      const r = await svc!.client.json('POST', '/v1/webhook-endpoints', { url: target });
      expect(r.status, target).toBe(422);
    }
    // schemathesis itself fetches only the spec, unless the spec points elsewhere (externalValue, a remote $ref).
    const spec = await (await fetch(`${svc!.url}/openapi.yaml`)).text();
    expect(spec).not.toMatch(/externalValue|\$ref: "?https?:/);
    const local = await svc!.client.json('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook' });
    expect(local.status).toBe(201);
    expect((await svc!.client.request('DELETE', `/v1/webhook-endpoints/${local.body.id}`)).status).toBe(204);
  });

  it(
    `finds no 5xx, no schema violation and no undocumented status (seed ${FUZZ_SEED}, ${EXAMPLES} examples per operation)`,
    async () => {
      requireSchemathesis();
      // Two passes, since one header cannot serve both: the tenant's calls with the tenant's key,
      // the admin API (/v1/admin/…) with the server admin key. Together they test every operation.
      const tenant = await fuzzPass('tenant', svc!.apiKey, ['--exclude-path-regex', '^/v1/admin/']);
      const admin = await fuzzPass('admin', ADMIN_KEY, ['--include-path-regex', '^/v1/admin/']);
      expect(tenant.total).toBe(admin.total);
      expect(tenant.tested + admin.tested, 'every operation in openapi.yaml was tested').toBe(tenant.total);
    },
    RUN_TIMEOUT_MS,
  );

  /** One schemathesis run with `key` over the operations `filter` selects; fails the test on any failure. */
  async function fuzzPass(name: string, key: string, filter: string[]): Promise<{ tested: number; total: number }> {
    const url = svc!.url;
    const args = [
      '--config-file', path.join(REPO, 'test/fuzz/schemathesis.toml'),
      'run', `${url}/openapi.yaml`,
      '--url', url,
      '--header', `Authorization: Bearer ${key}`,
      ...filter,
      '--checks', 'all',
      '--phases', 'examples,coverage,fuzzing',
      '--max-examples', String(EXAMPLES),
      '--seed', String(FUZZ_SEED),
      '--generation-database', 'none',
      // One worker: the machine is shared, and Python 3.11 can fail parsing in parallel threads.
      '--workers', '1',
      '--request-timeout', '10',
      '--suppress-health-check', 'all',
      '--no-color',
    ];
    const { code, output } = await run(SCHEMATHESIS, args, tmp!, (RUN_TIMEOUT_MS - 30_000) / 2);
    const summary = output.slice(output.lastIndexOf('=== SUMMARY') - 40);
    expect(output, `${name} pass: schemathesis produced no summary`).toMatch(/SUMMARY/);
    const selected = /Selected: (\d+)\/(\d+)/.exec(summary);
    const tested = /Tested: (\d+)/.exec(summary);
    expect(selected && tested, summary).toBeTruthy();
    expect(Number(tested![1]), `${name} pass: every selected operation was tested`).toBe(Number(selected![1]));
    // The whole report goes to a file; the message is its failures (with curl reproductions) and the summary.
    const reportDir = path.resolve(process.env.FANOUT_TEST_REPORT_DIR ?? path.join(REPO, '.tmp'));
    fs.mkdirSync(reportDir, { recursive: true });
    const reportFile = path.join(reportDir, `schemathesis-${name}.txt`);
    fs.writeFileSync(reportFile, output);
    const failures = output.indexOf('FAILURES');
    const message = `schemathesis (${name} pass) failed; full report in ${reportFile}\n${output.slice(failures >= 0 ? failures - 40 : 0).slice(0, 40_000)}`;
    expect(code, message).toBe(0);
    return { tested: Number(tested![1]), total: Number(selected![2]) };
  }
});
