import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runCli } from '../cli/run-cli.js';
import { startTestService, type TestService } from '../helpers/service.js';

/** `fanout get schedules` and `fanout get schedule ID` against the real service. */
describe('fanout get schedules', () => {
  let svc: TestService;
  let env: Record<string, string>;
  const ids: string[] = [];
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
    env = { FANOUT_SERVER: svc.url, FANOUT_API_KEY: svc.apiKey };
    for (const [name, team] of [['nightly', 'data'], ['hourly', 'web']]) {
      const r = await svc.client.json('POST', '/v1/schedules', { name, labels: { team }, schedule: '@daily', timeZone: 'Europe/Berlin', batchTemplate: { task: 'rev', items: ['a'] } });
      ids.push(r.body.id);
    }
  });
  afterAll(async () => svc?.close());

  it('lists as a table, filtered by -l', async () => {
    const all = await runCli(['get', 'schedules'], { env });
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+ID\s+SCHEDULE\s+SUSPEND\s+ACTIVE\s+LAST SCHEDULE$/);
    expect(lines).toHaveLength(3);
    expect((await runCli(['get', 'schedules', '-o', 'wide'], { env })).stdout).toContain('Europe/Berlin');
    const data = await runCli(['get', 'schedules', '-l', 'team=data', '-o', 'name'], { env });
    expect(data.stdout.trim()).toBe(ids[0]);
  });

  it('shows one as YAML; an unknown id fails', async () => {
    const one = await runCli(['get', 'schedule', ids[1]], { env });
    expect(one.code, one.stderr).toBe(0);
    expect(parseYaml(one.stdout)).toMatchObject({ id: ids[1], name: 'hourly', spec: { schedule: '@daily' } });
    const missing = await runCli(['get', 'schedule', 'snope'], { env });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/not found/);
  });
});
