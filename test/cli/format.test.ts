import { describe, expect, it } from 'vitest';
import { FanoutProblemError, ServerUnreachableError, type Batch, type Item, type Schedule, type WebhookDelivery, type WebhookEndpoint } from '../../src/cli/api.js';
import { CliError, formatError } from '../../src/cli/errors.js';
import { fitWidths, formatAge, formatLabels, renderTable, truncate } from '../../src/cli/format.js';
import { BATCH_TABLE, DELIVERY_TABLE, ITEM_TABLE, renderResourceTable, SCHEDULE_TABLE, WEBHOOK_TABLE } from '../../src/cli/tables.js';
import { displayWidth } from '../../src/cli/text-width.js';

const renderBatchTable = (batches: Batch[], now: number) => renderResourceTable(BATCH_TABLE, batches, now, { wide: false, width: 80 });
import { RateMeter, describeOutcome } from '../../src/cli/wait.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('formatAge (kubectl style)', () => {
  it.each([
    ['negative clock skew', -5 * S, '0s'],
    ['zero', 0, '0s'],
    ['seconds', 45 * S, '45s'],
    ['under two minutes stays in seconds', 119 * S, '119s'],
    ['minutes and seconds', 5 * M + 30 * S, '5m30s'],
    ['whole minutes', 5 * M, '5m'],
    ['minutes only from ten', 45 * M + 10 * S, '45m'],
    ['minutes up to three hours', 2 * H + 5 * M, '125m'],
    ['hours and minutes', 3 * H + 20 * M, '3h20m'],
    ['whole hours', 4 * H, '4h'],
    ['hours up to two days', 30 * H, '30h'],
    ['days and hours', 2 * D + 5 * H, '2d5h'],
    ['days', 300 * D, '300d'],
    ['years and days', 2 * 365 * D + 45 * D, '2y45d'],
  ])('%s', (_name, ms, expected) => {
    expect(formatAge(ms)).toBe(expected);
  });
});

describe('formatLabels', () => {
  it.each([
    ['none', undefined, '<none>'],
    ['empty', {}, '<none>'],
    ['sorted by key', { tier: 'web', app: 'x' }, 'app=x,tier=web'],
  ])('%s', (_name, labels, expected) => {
    expect(formatLabels(labels)).toBe(expected);
  });
});

describe('renderTable', () => {
  const columns = [{ header: 'NAME', shrinkable: true, minWidth: 4 }, { header: 'ID' }, { header: 'LABELS', shrinkable: true, minWidth: 6 }];
  const rows = [['short', 'id-1', 'a=b'], ['a-rather-long-name', 'id-2', 'team=platform,env=production']];

  it('pads columns with three spaces and no trailing blanks', () => {
    expect(renderTable(columns, [rows[0]!])).toBe('NAME    ID     LABELS\nshort   id-1   a=b');
  });

  it('leaves everything when no width is given', () => {
    expect(renderTable(columns, rows)).toContain('team=platform,env=production');
  });

  it('cuts the widest shrinkable column first, never the fixed ones', () => {
    const lines = renderTable(columns, rows, 40).split('\n');
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(40);
    expect(lines[2]).toBe('a-rather-long-…   id-2   team=platform,…');
    const tight = renderTable(columns, rows, 30).split('\n');
    for (const line of tight) expect(line.length).toBeLessThanOrEqual(30);
    expect(tight[2]).toContain('id-2');
  });

  it('then cuts the other columns down to their headers, and each line to the width', () => {
    // the shrinkable ones at their minimum (4 and 6) leave 20; ID cannot go below "ID"
    expect(renderTable(columns, rows, 19).split('\n')[2]).toBe('a-r…   id…   team=…');
    for (const width of [1, 5, 12, 19]) {
      for (const line of renderTable(columns, rows, width).split('\n')) expect(line.length).toBeLessThanOrEqual(width);
    }
    expect(renderTable(columns, rows, 5).split('\n')[2]).toMatch(/^a-r…/);
  });

  it('makes cells one line and measures wide characters as two columns', () => {
    const out = renderTable(columns, [['名前がとても長いバッチ', 'id\n2', 'a=b\tc=d']], 30);
    const lines = out.split('\n');
    expect(lines[1]).toBe('名前がとても…   id 2   a=b c=d');
    expect(lines.every((l) => !/[\n\t]/.test(l))).toBe(true);
  });

  it.each([
    ['fits', 'abc', 3, 'abc'],
    ['cut', 'abcdef', 4, 'abc…'],
    ['one column is the mark', 'abcdef', 1, '…'],
    ['zero', 'abc', 0, ''],
    ['wide characters are cut whole', '日本語テキスト', 6, '日本…'],
  ])('truncate: %s', (_name, text, width, expected) => {
    expect(truncate(text, width)).toBe(expected);
  });
});

function batch(overrides: Partial<Batch['status']> = {}, fields: Partial<Batch> = {}): Batch {
  return {
    id: 'b-1',
    name: 'fruit',
    labels: { jobgroup: 'jobexample' },
    createdAt: new Date(0).toISOString(),
    priority: 0,
    spec: { runtime: 'queue', task: 'rev' },
    status: {
      phase: 'Running',
      counts: { total: 10, pending: 3, running: 2, succeeded: 4, failed: 1, cancelled: 0 },
      ...overrides,
    } as Batch['status'],
    ...fields,
  };
}

describe('the batch table', () => {
  it('shows succeeded/total, failed and age', () => {
    const out = renderBatchTable([batch()], 3 * H);
    expect(out.split('\n')[1]).toMatch(/^fruit\s+b-1\s+Running\s+4\/10\s+1\s+3h$/);
  });

  it('prints - for a batch without a name or a readable date', () => {
    const out = renderBatchTable([batch({}, { name: null, createdAt: 'garbage' })], 0);
    expect(out.split('\n')[1]).toMatch(/^-\s+b-1\s+Running\s+4\/10\s+1\s+-$/);
  });
});

describe('fitWidths', () => {
  const cols = [{ header: 'NAME', shrinkable: true, minWidth: 8 }, { header: 'ID' }, { header: 'LABELS', shrinkable: true, minWidth: 6 }];
  it.each([
    ['fits: unchanged', [10, 5, 10], 40, [10, 5, 10]],
    ['the widest shrinkable column first', [30, 5, 10], 40, [19, 5, 10]],
    ['shared once they are level', [30, 5, 30], 40, [14, 5, 15]],
    ['shrinkable ones stop at minWidth', [30, 20, 30], 40, [8, 20, 6]],
    ['then at their header, then the others give', [30, 20, 30], 34, [4, 18, 6]],
    ['the others down to their headers', [30, 20, 30], 26, [4, 10, 6]],
    ['nothing below a header', [30, 20, 30], 1, [4, 2, 6]],
  ])('%s', (_name, natural, width, expected) => {
    expect(fitWidths(cols, natural, width)).toEqual(expected);
  });
});

describe('describeOutcome', () => {
  it('adds the reason of a failure', () => {
    const failed = batch({
      phase: 'Failed',
      counts: { total: 3, pending: 0, running: 0, succeeded: 1, failed: 2, cancelled: 0 },
      conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'item 2 failed 3 times', lastTransitionTime: '2026-01-01T00:00:00Z' }],
    });
    expect(describeOutcome(failed)).toEqual(['batch b-1 Failed: 3/3 done, 1 succeeded, 2 failed', '  BackoffLimitExceeded: item 2 failed 3 times']);
  });

  it('is one line for a success', () => {
    const ok = batch({ phase: 'Succeeded', counts: { total: 2, pending: 0, running: 0, succeeded: 2, failed: 0, cancelled: 0 } });
    expect(describeOutcome(ok)).toEqual(['batch b-1 Succeeded: 2/2 done, 2 succeeded']);
  });
});

describe('RateMeter', () => {
  it('measures items/s over its window and derives the ETA', () => {
    const meter = new RateMeter(10_000);
    expect(meter.add(0, 0, 100)).toEqual({ perSecond: 0, etaSeconds: undefined });
    expect(meter.add(1000, 10, 100)).toEqual({ perSecond: 10, etaSeconds: 9 });
    expect(meter.add(2000, 20, 100)).toEqual({ perSecond: 10, etaSeconds: 8 });
    // a stall longer than the window drops the old rate
    meter.add(20_000, 20, 100);
    expect(meter.add(21_000, 20, 100)).toEqual({ perSecond: 0, etaSeconds: undefined });
    expect(meter.add(22_000, 100, 100).etaSeconds).toBe(0);
  });
});

describe('formatError', () => {
  it.each([
    [
      'problem with field errors',
      new FanoutProblemError({ status: 422, title: 'Invalid batch spec', detail: '2 problems', errors: [{ pointer: '/items/0', detail: 'bad' }, { pointer: '', detail: 'root' }] }),
      ['error: Invalid batch spec: 2 problems', '  /items/0: bad', '  /: root'],
    ],
    [
      'NDJSON problem with line numbers',
      new FanoutProblemError({ status: 422, title: 'Invalid request', detail: 'line 3: invalid JSON', errors: [{ pointer: '', line: 3, detail: 'invalid JSON' }, { pointer: '/task', line: 1, detail: 'required' }] }),
      ['error: Invalid request: line 3: invalid JSON', '  line 3: invalid JSON', '  line 1 /task: required'],
    ],
    ['problem without detail', new FanoutProblemError({ status: 409, title: 'Conflict' }), ['error: Conflict']],
    ['unreachable', new ServerUnreachableError('http://x:1', 'connection refused'), ['error: cannot reach the Fanout API at http://x:1: connection refused']],
    ['cli error', new CliError('give a batch ID'), ['error: give a batch ID']],
    ['multi-line error keeps the first line', new Error('bad config\n  at stack'), ['error: bad config']],
  ])('%s', (_name, err, expected) => {
    expect(formatError(err)).toEqual(expected);
  });
});

describe('every table fits 80 columns with the largest data the API allows', () => {
  const now = Date.parse('2026-11-29T12:00:00Z');
  const long = (n: number) => 'x'.repeat(n);
  const M = 1_000_000;
  const batchId = 'b0mx18g4ib00021004a0';
  const worstBatch: Batch = {
    id: batchId,
    name: `${long(200)}名前`,
    labels: { [`${long(200)}/${long(63)}`]: long(63) },
    createdAt: '2020-01-01T00:00:00Z',
    priority: 0,
    spec: { runtime: 'job-per-item', task: long(63), parallelism: M },
    status: { phase: 'Suspended', counts: { total: M, pending: 0, running: 0, succeeded: M - 1, failed: M - 1, cancelled: 0 } } as Batch['status'],
  };
  const schedule = {
    id: 's0mx18g4ky000bcdabaa',
    name: long(253),
    labels: {},
    createdAt: '2020-01-01T00:00:00Z',
    spec: { schedule: 'CRON_TZ=America/Argentina/Buenos_Aires 0 5 * * 1-5', timeZone: 'America/Argentina/Buenos_Aires', concurrencyPolicy: 'Forbid', suspend: true },
    status: { lastScheduleTime: '2021-01-01T00:00:00Z', active: Array.from({ length: 1000 }, () => batchId), nextRunTime: null },
  } as Schedule;
  const item = {
    index: 9_999_999,
    customId: long(500),
    status: 'cancelled',
    error: `Traceback\n${long(4000)}`,
    startedAt: '2020-01-01T00:00:00Z',
    finishedAt: null,
    attempts: Array.from({ length: 101 }, (_, i) => ({ attempt: i + 1, outcome: 'failed', exitCode: 255, httpStatus: null, condition: null, error: null, startedAt: null, finishedAt: null })) as unknown as Item['attempts'],
  } as Item;
  const endpoint: WebhookEndpoint = {
    id: 'whe_mx18g4fnc7b635f118b9c73d',
    url: `https://${long(2000)}`,
    description: long(500),
    events: ['batch.succeeded', 'batch.failed', 'batch.cancelled', 'item.failed'],
    enabled: false,
    disabledReason: long(300),
    createdAt: '2020-01-01T00:00:00Z',
    updatedAt: '2020-01-01T00:00:00Z',
  };
  const delivery: WebhookDelivery = {
    id: 'whd_mx18g4o44debfdb708d193a8',
    webhookId: 'msg_x',
    eventId: 'evt_x',
    type: 'batch.cancelled',
    batchId,
    endpointId: null,
    url: endpoint.url,
    status: 'succeeded',
    nextAttemptAt: null,
    lastError: long(1000),
    createdAt: '2020-01-01T00:00:00Z',
    attempts: Array.from({ length: 100 }, (_, i) => ({ attempt: i + 1, at: '2020-01-01T00:00:00Z', statusCode: 503, latencyMs: 1, response: null, error: null })),
  };

  it.each([
    ['batches', () => renderResourceTable(BATCH_TABLE, [worstBatch, batch()], now, { wide: false, width: 80 }), [batchId, '999999/1000000', '999999', 'Suspended', '6y']],
    ['schedules', () => renderResourceTable(SCHEDULE_TABLE, [schedule], now, { wide: false, width: 80 }), ['s0mx18g4ky000bcdabaa', 'True', '1000', '5y']],
    ['items', () => renderResourceTable(ITEM_TABLE, [item], now, { wide: false, width: 80 }), ['9999999', 'cancelled', '101', '6y']],
    ['webhooks', () => renderResourceTable(WEBHOOK_TABLE, [endpoint], now, { wide: false, width: 80 }), ['whe_mx18g4fnc7b635f118b9c73d', 'False', '6y']],
    ['deliveries', () => renderResourceTable(DELIVERY_TABLE, [delivery], now, { wide: false, width: 80 }), ['whd_mx18g4o44debfdb708d193a8', 'batch.cancelled', 'succeeded', '100']],
  ])('%s', (_name, render, whole) => {
    const out = render();
    for (const line of out.split('\n')) expect(displayWidth(line), line).toBeLessThanOrEqual(80);
    // ids and numbers are never what gets cut
    for (const text of whole) expect(out).toContain(text);
  });

  it('wide keeps everything', () => {
    const out = renderResourceTable(BATCH_TABLE, [worstBatch], now, { wide: true, width: 80 });
    expect(out).toContain(worstBatch.name!);
    expect(out).toContain(long(63));
    expect(out).toContain('1000000');
    expect(out).toContain('2020-01-01T00:00:00Z');
  });
});
