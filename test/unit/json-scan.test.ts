import { describe, expect, it } from 'vitest';
import { invalidUtf8Offset, nestsDeeperThan, pathAtEnd, scanJson } from '../../src/domain/json-scan.js';

describe('scanJson', () => {
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
  /** n levels, alternating [ and {"k": */
  const mixed = (n: number) => {
    let text = '1';
    for (let k = 0; k < n; k++) text = k % 2 === 0 ? `[${text}]` : `{"k":${text}}`;
    return text;
  };
  it.each([
    ['a scalar', '1', 1, undefined],
    ['depth at the limit', deep(3), 3, undefined],
    ['one level over the limit', deep(4), 3, { path: [0, 0, 0], reason: 'too-deep' }],
    ['an object inside an array', '[1,{"a":{"b":{}}}]', 3, { path: [1, 'a', 'b'], reason: 'too-deep' }],
    ['100,000 levels, no recursion', deep(100_000), 64, { path: new Array(64).fill(0), reason: 'too-deep' }],
    ['a string with brackets does not count', '["[[[[{{{{"]', 2, undefined],
    ['1e400 in an array', '{"items":[1,2,1e400]}', 64, { path: ['items', 2], reason: 'number-overflow' }],
    ['-1e400 as a value', '{"a":{"b":-1e400}}', 64, { path: ['a', 'b'], reason: 'number-overflow' }],
    ['1e308 is fine', '[1e308,-0.5e-400]', 64, undefined],
    ['an escaped key', '{"a\\"b":[1e999]}', 64, { path: ['a"b', 0], reason: 'number-overflow' }],
    ['literals between values', '[true,false,null,1e400]', 64, { path: [3], reason: 'number-overflow' }],
    ['mixed arrays and objects, neither alone over the limit', mixed(70), 64, { reason: 'too-deep' }],
    ['mixed, at the limit', mixed(64), 64, undefined],
    ['many brackets side by side are not depth', `[${'[],{},'.repeat(100)}1]`, 3, undefined],
    ['a 310-digit integer overflows', `[${'9'.repeat(310)}]`, 64, { path: [0], reason: 'number-overflow' }],
    ['a 250-digit integer does not', `[${'9'.repeat(250)}]`, 64, undefined],
    ['220 digits and a 2-digit exponent overflow', `{"x":${'1'.repeat(220)}e99}`, 64, { path: ['x'], reason: 'number-overflow' }],
    ['a 3-digit negative exponent is fine', '[1e-320,2E+100]', 64, undefined],
    ['escaped quotes in strings', '["a\\\\",{"k\\\\\\"":"\\"[",  "n": 1e400}]', 64, { path: [1, 'n'], reason: 'number-overflow' }],
  ])('%s', (_name, text, maxDepth, expected) => {
    JSON.parse(text); // every case is valid JSON
    const { refusal } = scanJson(text, maxDepth);
    if (expected === undefined) expect(refusal).toBeUndefined();
    else expect(refusal).toMatchObject(expected);
  });

  it.each([
    ['none', '{"a":{"b":[1,{"c":2}]}}', []],
    ['a label', '{"labels":{"__proto__":"x"}}', [['labels', '__proto__']]],
    ['in an item and at the top', '{"__proto__":1,"items":[5,{"__proto__":{}}]}', [['__proto__'], ['items', 1, '__proto__']]],
    ['escaped', '{"\\u005f_proto__":1}', [['__proto__']]],
    ['a value, not a key', '{"a":"__proto__"}', []],
  ])('__proto__ keys: %s', (_name, text, expected) => {
    expect(scanJson(text, 64).protoKeys).toEqual(expected);
  });
});

describe('nestsDeeperThan', () => {
  it.each([
    ['[[1]]', 2, false],
    ['[[[1]]]', 2, true],
    ['[1e400]', 2, false],
    [`[${'[],'.repeat(50)}1]`, 2, false],
    ['[{"a":[{}]}]', 3, true],
  ])('%s deeper than %i: %s', (text, depth, deeper) => {
    expect(nestsDeeperThan(text, depth)).toBe(deeper);
  });
});

describe('pathAtEnd', () => {
  it.each([
    ['{"name":"ab', ['name']],
    ['{"task":"x","items":["a","b', ['items', 1]],
    ['{"labels":{"k', ['labels']],
    ['', []],
  ])('%j → %j', (prefix, path) => {
    expect(pathAtEnd(prefix)).toEqual(path);
  });
});

describe('invalidUtf8Offset', () => {
  it.each([
    ['ascii', [0x61, 0x62], -1],
    ['é and a 4-byte emoji', [0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80], -1],
    ['a lone 0xff', [0x61, 0xff], 1],
    ['a truncated sequence', [0x61, 0x62, 0xe2, 0x82], 2],
    ['an overlong form', [0xc0, 0xaf], 0],
    ['a surrogate', [0xed, 0xa0, 0x80], 0],
    ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80], 0],
    ['a bad continuation', [0xe2, 0x28, 0xa1], 0],
  ])('%s', (_name, bytes, offset) => {
    expect(invalidUtf8Offset(new Uint8Array(bytes))).toBe(offset);
    // Agrees with the platform's decoder on whether the bytes are UTF-8.
    let valid = true;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
    } catch {
      valid = false;
    }
    expect(offset === -1).toBe(valid);
  });
});
