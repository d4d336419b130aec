import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadExecConfig, parseTasksEnv } from '../../src/config/config.js';

/** The worker and exec knobs of src/config: FANOUT_TASKS, --batch/--exit-when-empty, exec's environment. */

describe('FANOUT_TASKS', () => {
  it.each([
    ['one task', 'rev=rev', ['rev=rev']],
    ['several, spaces around', ' rev=rev ; enrich=https://fn/enrich;shout=tr a-z A-Z ', ['rev=rev', 'enrich=https://fn/enrich', 'shout=tr a-z A-Z']],
    ['empty entries skipped', ';rev=rev;;', ['rev=rev']],
    ['unset', undefined, []],
    ['= inside the command', 'env=env FOO=bar', ['env=env FOO=bar']],
  ])('%s', (_name, value, tasks) => {
    expect(parseTasksEnv(value)).toEqual(tasks);
  });

  it.each([['no =', 'rev'], ['no command', 'rev='], ['bad name', '-x=cat']])('refuses %s with a clear line', (_name, value) => {
    expect(() => parseTasksEnv(`ok=cat;${value}`)).toThrow(ConfigError);
    expect(() => parseTasksEnv(`ok=cat;${value}`)).toThrow(/^FANOUT_TASKS: each entry must be NAME=COMMAND\|URL, got/);
  });

  it('flags add to the environment; a flag replaces the env task of the same name', () => {
    const env = { FANOUT_TASKS: 'rev=rev;enrich=https://fn/enrich' };
    expect(loadConfig({}, env).tasks).toEqual(['rev=rev', 'enrich=https://fn/enrich']);
    expect(loadConfig({ task: ['shout=tr a-z A-Z'] }, env).tasks).toEqual(['rev=rev', 'enrich=https://fn/enrich', 'shout=tr a-z A-Z']);
    expect(loadConfig({ task: ['rev=rev -r'] }, env).tasks).toEqual(['enrich=https://fn/enrich', 'rev=rev -r']);
    expect(loadConfig({ task: 'rev=cat' }, {}).tasks).toEqual(['rev=cat']);
  });
});

describe('worker --batch / --exit-when-empty', () => {
  it('--exit-when-empty needs a batch', () => {
    expect(() => loadConfig({ exitWhenEmpty: true }, { FANOUT_TOKEN: 'fbt_x' })).toThrow(/--exit-when-empty needs --batch ID/);
  });

  it('--exit-when-empty needs FANOUT_TOKEN or an API key', () => {
    expect(() => loadConfig({ exitWhenEmpty: true, batch: 'b1' }, {})).toThrow(/needs FANOUT_TOKEN/);
    expect(loadConfig({ exitWhenEmpty: true, batch: 'b1' }, { FANOUT_API_KEY: 'k' })).toMatchObject({ batchId: 'b1', exitWhenEmpty: true, apiKey: 'k' });
  });

  it('reads the batch from FANOUT_BATCH_ID and the token from FANOUT_TOKEN; the flag wins', () => {
    const env = { FANOUT_BATCH_ID: 'benv', FANOUT_TOKEN: 'fbt_t', FANOUT_API_URL: 'http://api:8080' };
    expect(loadConfig({ exitWhenEmpty: true }, env)).toMatchObject({ batchId: 'benv', batchToken: 'fbt_t', apiUrl: 'http://api:8080' });
    expect(loadConfig({ batch: 'bflag' }, env).batchId).toBe('bflag');
    expect(loadConfig({}, {})).toMatchObject({ batchId: undefined, exitWhenEmpty: false, batchToken: undefined });
  });
});

describe('loadExecConfig', () => {
  const full = { FANOUT_API_URL: 'http://api:8080', FANOUT_BATCH_ID: 'b1', FANOUT_TOKEN: 'fbt_t', JOB_COMPLETION_INDEX: '7' };

  it('the item index is FANOUT_INDEX_OFFSET + JOB_COMPLETION_INDEX', () => {
    expect(loadExecConfig(full)).toEqual({ apiUrl: 'http://api:8080', batchId: 'b1', token: 'fbt_t', index: 7, retryMs: 60_000 });
    expect(loadExecConfig({ ...full, FANOUT_INDEX_OFFSET: '200000', FANOUT_EXEC_RETRY_SECONDS: '3' })).toMatchObject({ index: 200_007, retryMs: 3000 });
  });

  it('names every missing variable in one line, never a value', () => {
    expect(() => loadExecConfig({ FANOUT_TOKEN: 'fbt_secret' })).toThrow(
      /^missing environment: FANOUT_API_URL, FANOUT_BATCH_ID, JOB_COMPLETION_INDEX \(/,
    );
    expect(() => loadExecConfig({ ...full, FANOUT_TOKEN: '' })).toThrow(/^missing environment: FANOUT_TOKEN \(/);
  });

  it.each([
    ['a negative index', { JOB_COMPLETION_INDEX: '-1' }, /JOB_COMPLETION_INDEX must be an integer >= 0/],
    ['a non-numeric offset', { FANOUT_INDEX_OFFSET: 'ten' }, /FANOUT_INDEX_OFFSET must be an integer >= 0/],
    ['an API URL without scheme', { FANOUT_API_URL: 'api:8080' }, /FANOUT_API_URL must be an http/],
  ])('refuses %s', (_name, bad, message) => {
    expect(() => loadExecConfig({ ...full, ...bad })).toThrow(message);
  });
});
