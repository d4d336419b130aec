import { describe, expect, it } from 'vitest';
import { copyField, copyRow, numberPlaceholders } from '../../src/store/postgres/sql-text.js';
import { isUnavailable, unavailableOr } from '../../src/store/postgres/unavailable.js';
import { StoreUnavailableError } from '../../src/store/store.js';

describe('numberPlaceholders: ? becomes $1…$n outside strings, quoted names and comments', () => {
  it.each<[string, string]>([
    ['SELECT 1', 'SELECT 1'],
    ['SELECT ?', 'SELECT $1'],
    ['INSERT INTO t (a, b, c) VALUES (?, ?,?)', 'INSERT INTO t (a, b, c) VALUES ($1, $2,$3)'],
    ["SELECT '?' , ?", "SELECT '?' , $1"],
    ["SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"],
    ['SELECT "odd?name", ?', 'SELECT "odd?name", $1'],
    ['SELECT "a""?", ?', 'SELECT "a""?", $1'],
    ["SELECT E'back\\' ?', ?", "SELECT E'back\\' ?', $1"],
    // a backslash ends nothing in a standard string
    ["SELECT 'back\\', ?", "SELECT 'back\\', $1"],
    // a name ending in e before a string is no E'' string
    ["SELECT name'x\\', ?", "SELECT name'x\\', $1"],
    ['SELECT ? -- why?\n, ?', 'SELECT $1 -- why?\n, $2'],
    ['SELECT ? /* a /* nested? */ comment? */ , ?', 'SELECT $1 /* a /* nested? */ comment? */ , $2'],
    ['SELECT $$ what? $$, ?', 'SELECT $$ what? $$, $1'],
    ['SELECT $tag$ a $$ ? $tag$, ?', 'SELECT $tag$ a $$ ? $tag$, $1'],
    ["SELECT 'unterminated ?", "SELECT 'unterminated ?"],
    ['SELECT ?/?', 'SELECT $1/$2'],
  ])('%j', (input, want) => {
    expect(numberPlaceholders(input)).toBe(want);
  });
});

describe("copyField: COPY's text format", () => {
  it.each<[string | number | null, string]>([
    [null, '\\N'],
    ['\\N', '\\\\N'],
    ['', ''],
    [42, '42'],
    ['a\tb', 'a\\tb'],
    ['a\nb\r\n', 'a\\nb\\r\\n'],
    ['back\\slash', 'back\\\\slash'],
    ['\\.', '\\\\.'],
    ['ünïcödé 🎉', 'ünïcödé 🎉'],
  ])('%j', (value, want) => {
    expect(copyField(value)).toBe(want);
  });

  it('joins a row with tabs and ends it with a newline', () => {
    expect(copyRow(['b1', 3, null, 'x\ty', 'pending'])).toBe('b1\t3\t\\N\tx\\ty\tpending\n');
  });
});

describe('which PostgreSQL errors mean "unavailable"', () => {
  const withCode = (code: string, message = 'boom') => Object.assign(new Error(message), { code });
  it.each<[string, Error, boolean]>([
    ['connection refused', withCode('ECONNREFUSED'), true],
    ['connection reset', withCode('ECONNRESET'), true],
    ['timed out', withCode('ETIMEDOUT'), true],
    ['SQLSTATE class 08', withCode('08006'), true],
    ['admin shutdown', withCode('57P01'), true],
    ['crash shutdown', withCode('57P02'), true],
    ['starting up', withCode('57P03'), true],
    ['too many connections', withCode('53300'), true],
    ['pool wait', new Error('timeout exceeded when trying to connect'), true],
    ['connection closed', new Error('Connection terminated unexpectedly'), true],
    ['no answer at all', new Error('Query read timeout'), true],
    ['both addresses of localhost refused', new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]), true],
    ['unique violation', withCode('23505', 'duplicate key value violates unique constraint'), false],
    ['read-only transaction', withCode('25006'), false],
    ['statement timeout', withCode('57014', 'canceling statement due to statement timeout'), false],
    ['a wrapped connection error (drizzle)', new Error('Failed query: CREATE TABLE …', { cause: withCode('57P01') }), true],
    ['a wrapped constraint error (drizzle)', new Error('Failed query: INSERT …', { cause: withCode('23505') }), false],
    ['syntax error', withCode('42601'), false],
    ['an operation error', new Error('batch not found'), false],
  ])('%s: %s', (_name, err, want) => {
    expect(isUnavailable(err)).toBe(want);
    const mapped = unavailableOr(err);
    if (want) {
      expect(mapped).toBeInstanceOf(StoreUnavailableError);
      expect((mapped as Error).cause).toBe(err);
    } else {
      expect(mapped).toBe(err);
    }
  });
});
