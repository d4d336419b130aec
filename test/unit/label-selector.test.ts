import { describe, expect, test } from 'vitest';
import {
  LabelSelectorError,
  matchesLabels,
  MAX_SELECTOR_LENGTH,
  MAX_SELECTOR_TERMS,
  parseLabelSelector,
  type LabelRequirement,
} from '../../src/domain/label-selector.js';

const req = (key: string, operator: LabelRequirement['operator'], values: string[] = []): LabelRequirement => ({
  key,
  operator,
  values,
});

describe('parseLabelSelector', () => {
  test.each([
    { name: 'empty string selects everything', s: '', want: [] },
    { name: 'whitespace only', s: '  \t ', want: [] },
    { name: 'equals', s: 'env=prod', want: [req('env', 'In', ['prod'])] },
    { name: 'double equals', s: 'env==prod', want: [req('env', 'In', ['prod'])] },
    { name: 'not equals', s: 'env!=prod', want: [req('env', 'NotIn', ['prod'])] },
    { name: 'empty value', s: 'env=', want: [req('env', 'In', [''])] },
    { name: 'empty value before comma', s: 'env=,tier', want: [req('env', 'In', ['']), req('tier', 'Exists')] },
    { name: 'in set', s: 'tier in (web,api)', want: [req('tier', 'In', ['api', 'web'])] },
    { name: 'notin set', s: 'tier notin (web)', want: [req('tier', 'NotIn', ['web'])] },
    { name: 'in set dedups', s: 'tier in (b,a,b)', want: [req('tier', 'In', ['a', 'b'])] },
    { name: 'exists', s: 'canary', want: [req('canary', 'Exists')] },
    { name: 'does not exist', s: '!canary', want: [req('canary', 'DoesNotExist')] },
    { name: 'bang with space', s: '! canary', want: [req('canary', 'DoesNotExist')] },
    {
      name: 'all forms ANDed',
      s: 'env=prod,tier in (web, api),!canary,team,zone!=eu',
      want: [
        req('env', 'In', ['prod']),
        req('tier', 'In', ['api', 'web']),
        req('canary', 'DoesNotExist'),
        req('team', 'Exists'),
        req('zone', 'NotIn', ['eu']),
      ],
    },
    { name: 'whitespace everywhere', s: '  env  =  prod ,  tier   in(  web  ,api )  ', want: [req('env', 'In', ['prod']), req('tier', 'In', ['api', 'web'])] },
    { name: 'prefixed key', s: 'fanout.dev/batch=b-1', want: [req('fanout.dev/batch', 'In', ['b-1'])] },
    { name: 'value with dots and underscores', s: 'v=1.2_3-x', want: [req('v', 'In', ['1.2_3-x'])] },
    { name: 'key named like an operator', s: 'in=notin', want: [req('in', 'In', ['notin'])] },
    { name: 'prototype-ish key is just a key', s: 'constructor', want: [req('constructor', 'Exists')] },
  ])('$name', ({ s, want }) => {
    expect(parseLabelSelector(s)).toEqual(want);
  });

  test.each([
    { name: 'paren instead of key', s: 'env=a,(x)', err: 'unexpected "(" at position 6: expected a label key' },
    { name: 'paren at start', s: '(env)', err: 'unexpected "(" at position 0: expected a label key' },
    { name: 'leading comma', s: ',env', err: 'unexpected "," at position 0: expected a label key' },
    { name: 'trailing comma', s: 'env=a,', err: 'unexpected end of selector at position 6: expected a label key' },
    { name: 'double comma', s: 'a,,b', err: 'unexpected "," at position 2: expected a label key' },
    { name: 'bang alone', s: '!', err: 'unexpected end of selector at position 1: expected a label key' },
    { name: 'bang with operator', s: '!env=a', err: 'unexpected "=" at position 4: expected "," or end of selector' },
    { name: 'space inside key', s: 'my env=a', err: 'unexpected "env" at position 3: expected an operator (=, ==, !=, in, notin), "," or end of selector' },
    { name: 'missing list', s: 'env in prod', err: 'unexpected "prod" at position 7: expected "(" to start a list of values' },
    { name: 'unclosed list', s: 'env in (a,b', err: 'unexpected end of selector at position 11: expected "," or ")"' },
    { name: 'empty list', s: 'env in ()', err: 'unexpected ")" at position 8: expected a label value' },
    { name: 'trailing comma in list', s: 'env in (a,)', err: 'unexpected ")" at position 10: expected a label value' },
    { name: 'two values', s: 'env=a b', err: 'unexpected "b" at position 6: expected "," or end of selector' },
    { name: 'operator after operator', s: 'env==!a', err: 'unexpected "!" at position 5: expected a label value' },
    { name: 'greater than unsupported', s: 'n>3', err: 'unexpected ">" at position 1: expected an operator' },
    { name: 'triple equals', s: 'a===b', err: 'unexpected "=" at position 3: expected a label value' },
    { name: 'invalid key', s: '-env=a', err: 'invalid label key "-env" at position 0' },
    { name: 'uppercase prefix', s: 'Fanout.dev/x', err: 'invalid label key "Fanout.dev/x" at position 0' },
    { name: 'key too long', s: `${'k'.repeat(64)}=a`, err: 'invalid label key' },
    { name: 'invalid value', s: 'env=prod/x', err: 'invalid label value "prod/x" at position 4' },
    { name: 'value too long', s: `env=${'v'.repeat(64)}`, err: 'invalid label value' },
    { name: 'invalid value in list', s: 'env in (ok, -bad)', err: 'invalid label value "-bad" at position 12' },
  ])('rejects $name', ({ s, err }) => {
    expect(() => parseLabelSelector(s)).toThrow(LabelSelectorError);
    expect(() => parseLabelSelector(s)).toThrow(err);
  });
});

describe('matchesLabels', () => {
  const prod: Record<string, string> = { env: 'prod', tier: 'web' };
  test.each<{ name: string; s: string; labels: Record<string, string>; want: boolean }>([
    { name: 'empty selector matches anything', s: '', labels: prod, want: true },
    { name: 'empty selector matches no labels', s: '', labels: {}, want: true },
    { name: 'equals match', s: 'env=prod', labels: prod, want: true },
    { name: 'equals mismatch', s: 'env=dev', labels: prod, want: false },
    { name: 'equals missing key', s: 'env=prod', labels: {}, want: false },
    { name: 'empty value matches empty label', s: 'env=', labels: { env: '' }, want: true },
    { name: 'empty value does not match missing key', s: 'env=', labels: {}, want: false },
    { name: 'not equals mismatch', s: 'env!=prod', labels: prod, want: false },
    { name: 'not equals other value', s: 'env!=dev', labels: prod, want: true },
    { name: 'not equals matches missing key (Kubernetes)', s: 'env!=prod', labels: { tier: 'web' }, want: true },
    { name: 'notin matches missing key (Kubernetes)', s: 'env notin (prod,dev)', labels: {}, want: true },
    { name: 'notin excludes listed value', s: 'env notin (prod,dev)', labels: prod, want: false },
    { name: 'in match', s: 'tier in (api,web)', labels: prod, want: true },
    { name: 'in mismatch', s: 'tier in (api,db)', labels: prod, want: false },
    { name: 'in missing key', s: 'zone in (eu)', labels: prod, want: false },
    { name: 'exists', s: 'tier', labels: prod, want: true },
    { name: 'exists missing', s: 'zone', labels: prod, want: false },
    { name: 'exists with empty value', s: 'zone', labels: { zone: '' }, want: true },
    { name: 'does not exist', s: '!zone', labels: prod, want: true },
    { name: 'does not exist present', s: '!tier', labels: prod, want: false },
    { name: 'AND all true', s: 'env=prod,tier in (web),!zone', labels: prod, want: true },
    { name: 'AND one false', s: 'env=prod,tier in (api),!zone', labels: prod, want: false },
    { name: 'inherited property is not a label', s: 'constructor', labels: {}, want: false },
    { name: 'inherited property with !', s: '!toString', labels: {}, want: true },
    { name: 'case sensitive values', s: 'env=Prod', labels: prod, want: false },
  ])('$name', ({ s, labels, want }) => {
    expect(matchesLabels(parseLabelSelector(s), labels)).toBe(want);
  });
});

describe('parseLabelSelector size limits', () => {
  const terms = (n: number) => Array.from({ length: n }, (_, i) => `k${i}`).join(',');

  test(`${MAX_SELECTOR_TERMS} terms parse; one more is refused naming the limit`, () => {
    expect(parseLabelSelector(terms(MAX_SELECTOR_TERMS))).toHaveLength(MAX_SELECTOR_TERMS);
    expect(() => parseLabelSelector(terms(MAX_SELECTOR_TERMS + 1))).toThrow(LabelSelectorError);
    expect(() => parseLabelSelector(terms(MAX_SELECTOR_TERMS + 1))).toThrow(`at most ${MAX_SELECTOR_TERMS} requirements`);
  });

  test('the 933 terms an adversarial tester sent are refused', () => {
    expect(() => parseLabelSelector(terms(933))).toThrow(LabelSelectorError);
  });

  test(`${MAX_SELECTOR_LENGTH} characters parse; one more is refused naming the limit`, () => {
    // One `in` list of many values ("k in (v,v,…,v)" padded with spaces): one term, so only the length counts.
    const values = Array.from({ length: (MAX_SELECTOR_LENGTH - 'k in ()'.length + 1) / 2 - 1 }, () => 'v').join(',');
    const atLimit = `k in (${values})`.padEnd(MAX_SELECTOR_LENGTH, ' ');
    expect(atLimit).toHaveLength(MAX_SELECTOR_LENGTH);
    expect(parseLabelSelector(atLimit)).toEqual([req('k', 'In', ['v'])]);
    expect(() => parseLabelSelector(atLimit + ' ')).toThrow(LabelSelectorError);
    expect(() => parseLabelSelector(atLimit + ' ')).toThrow(`at most ${MAX_SELECTOR_LENGTH} characters`);
  });
});
