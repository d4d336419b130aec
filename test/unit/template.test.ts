import { describe, expect, test } from 'vitest';
import { renderTemplate, TemplateError, templatePlaceholders } from '../../src/domain/template.js';

const apple = { name: 'apple', url: 'http://dbpedia.org/resource/Apple', meta: { size: 3, tags: ['red'], note: null, deep: { x: 'y' } } };

describe('renderTemplate', () => {
  test.each<{ name: string; template: unknown; item: unknown; index?: number; want: unknown }>([
    { name: 'string item raw', template: 'echo {{ item }}', item: 'foo', want: 'echo foo' },
    { name: 'object item as JSON', template: '{{item}}', item: { a: 1 }, want: '{"a":1}' },
    { name: 'number item as JSON', template: 'n={{ item }}', item: 42, want: 'n=42' },
    { name: 'null item as JSON', template: '{{ item }}', item: null, want: 'null' },
    { name: 'array item as JSON', template: '{{ item }}', item: [1, 'a'], want: '[1,"a"]' },
    { name: 'index', template: 'part-{{ index }}', item: 'x', index: 7, want: 'part-7' },
    { name: 'index 0', template: '{{index}}', item: 'x', index: 0, want: '0' },
    { name: 'field', template: 'echo Processing {{ url }}', item: apple, want: 'echo Processing http://dbpedia.org/resource/Apple' },
    { name: 'nested field', template: '{{ meta.deep.x }}', item: apple, want: 'y' },
    { name: 'numeric field as JSON', template: 'size={{ meta.size }}', item: apple, want: 'size=3' },
    { name: 'array field as JSON', template: '{{ meta.tags }}', item: apple, want: '["red"]' },
    { name: 'null field as JSON', template: '{{ meta.note }}', item: apple, want: 'null' },
    { name: 'object field as JSON', template: '{{ meta.deep }}', item: apple, want: '{"x":"y"}' },
    { name: 'no whitespace', template: '{{name}}', item: apple, want: 'apple' },
    { name: 'lots of whitespace', template: '{{    name   }}', item: apple, want: 'apple' },
    { name: 'several placeholders in one string', template: '{{ index }}:{{ name }}:{{ name }}', item: apple, index: 2, want: '2:apple:apple' },
    { name: 'no placeholders', template: 'plain {text} } {', item: apple, want: 'plain {text} } {' },
    { name: 'empty string', template: '', item: apple, want: '' },
    { name: 'single braces are literal', template: '{ name }', item: apple, want: '{ name }' },
    { name: 'extra closing brace stays', template: '{{ name }}}', item: apple, want: 'apple}' },
    { name: 'non-strings pass through', template: { n: 1, b: true, z: null }, item: apple, want: { n: 1, b: true, z: null } },
    {
      name: 'deep walk of a Kubernetes-like template',
      template: { image: 'busybox:1.36', command: ['sh', '-c', 'echo {{ name }}'], env: { URL: '{{ url }}', I: '{{ index }}' } },
      item: apple,
      index: 4,
      want: { image: 'busybox:1.36', command: ['sh', '-c', 'echo apple'], env: { URL: 'http://dbpedia.org/resource/Apple', I: '4' } },
    },
    { name: 'object keys are not rendered', template: { '{{ name }}': 'v' }, item: apple, want: { '{{ name }}': 'v' } },
    { name: 'item values are not re-scanned (no injection)', template: '{{ a }}', item: { a: '{{ b }}', b: 'secret' }, want: '{{ b }}' },
    { name: 'string item with braces is not re-scanned', template: 'x {{ item }}', item: '{{ index }}', index: 1, want: 'x {{ index }}' },
    { name: 'field named index loses to the index', template: '{{ index }}', item: { index: 'mine' }, index: 3, want: '3' },
    { name: 'own __proto__ key from JSON is data', template: '{{ __proto__ }}', item: JSON.parse('{"__proto__":"p"}'), want: 'p' },
    { name: 'underscore and digits in names', template: '{{ a_1.b2 }}', item: { a_1: { b2: 'ok' } }, want: 'ok' },
  ])('$name', ({ template, item, index, want }) => {
    expect(renderTemplate(template, item, index ?? 0)).toEqual(want);
  });

  test('does not mutate the template', () => {
    const template = { command: ['{{ name }}'] };
    renderTemplate(template, apple, 0);
    expect(template).toEqual({ command: ['{{ name }}'] });
  });

  test('a "__proto__" template key stays an own key and does not change the prototype', () => {
    const template = JSON.parse('{"__proto__":{"polluted":"{{ name }}"}}') as unknown;
    const out = renderTemplate(template, apple, 0) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"polluted":"apple"}}');
  });

  test.each<{ name: string; template: unknown; item: unknown; msg: string; path: string }>([
    { name: 'missing field', template: { command: ['sh', '{{ url }}'] }, item: { name: 'x' }, msg: 'item 5 has no field "url" for placeholder "{{ url }}" at /command/1', path: '/command/1' },
    { name: 'missing nested field', template: '{{ meta.missing }}', item: apple, msg: 'no field "meta.missing"', path: '' },
    { name: 'path through a non-object', template: '{{ name.length }}', item: apple, msg: 'no field "name.length"', path: '' },
    { name: 'path into an array', template: '{{ meta.tags.length }}', item: apple, msg: 'no field "meta.tags.length"', path: '' },
    { name: 'field of a string item', template: '{{ length }}', item: 'abc', msg: 'no field "length"', path: '' },
    { name: 'field of an array item', template: '{{ length }}', item: [1, 2], msg: 'no field "length"', path: '' },
    { name: 'field of a null item', template: '{{ a }}', item: null, msg: 'no field "a"', path: '' },
    { name: 'inherited property is missing', template: '{{ constructor }}', item: {}, msg: 'no field "constructor"', path: '' },
    { name: 'process.version is a missing path, not code', template: '{{ process.version }}', item: {}, msg: 'no field "process.version"', path: '' },
    { name: 'expression', template: { a: ['{{ a + b }}'] }, item: { a: 1, b: 2 }, msg: 'unsupported placeholder "{{ a + b }}" at /a/0', path: '/a/0' },
    { name: 'call', template: '{{ x() }}', item: { x: 1 }, msg: 'unsupported placeholder "{{ x() }}"', path: '' },
    { name: 'empty braces', template: '{{}}', item: {}, msg: 'unsupported placeholder "{{}}"', path: '' },
    { name: 'blank braces', template: '{{   }}', item: {}, msg: 'unsupported placeholder', path: '' },
    { name: 'leading dot (Go template style)', template: '{{ .Name }}', item: {}, msg: 'unsupported placeholder', path: '' },
    { name: 'trailing dot', template: '{{ a. }}', item: {}, msg: 'unsupported placeholder', path: '' },
    { name: 'bracket access', template: '{{ a["b"] }}', item: {}, msg: 'unsupported placeholder', path: '' },
    { name: 'numeric segment', template: '{{ tags.0 }}', item: { tags: ['a'] }, msg: 'unsupported placeholder', path: '' },
    { name: 'hyphenated name', template: '{{ first-name }}', item: {}, msg: 'unsupported placeholder', path: '' },
    { name: 'nested braces', template: '{{ {{ a }} }}', item: { a: 1 }, msg: 'unsupported placeholder', path: '' },
    { name: 'unclosed placeholder', template: { c: 'echo {{ url }' }, item: apple, msg: 'unclosed placeholder "{{ url }" at /c: missing "}}"', path: '/c' },
    { name: 'unclosed after a good one', template: '{{ name }} and {{ url', item: apple, msg: 'unclosed placeholder', path: '' },
    { name: 'pointer escapes ~ and /', template: { 'a/b': { 'c~d': '{{ nope }}' } }, item: {}, msg: 'at /a~1b/c~0d', path: '/a~1b/c~0d' },
  ])('throws on $name', ({ template, item, msg, path }) => {
    let caught: unknown;
    try {
      renderTemplate(template, item, 5);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(TemplateError);
    expect((caught as TemplateError).message).toContain(msg);
    expect((caught as TemplateError).path).toBe(path);
  });
});

describe('templatePlaceholders', () => {
  test.each<{ name: string; template: unknown; want: string[] }>([
    { name: 'no template', template: undefined, want: [] },
    { name: 'no placeholders', template: { image: 'busybox', command: ['ls'] }, want: [] },
    { name: 'single', template: 'echo {{ url }}', want: ['url'] },
    { name: 'item and index included', template: ['{{ item }}', '{{index}}'], want: ['item', 'index'] },
    { name: 'deduplicated in first-appearance order', template: { a: '{{ b }} {{ a.c }}', z: ['{{ b }}', '{{ a.c }}', '{{ d }}'] }, want: ['b', 'a.c', 'd'] },
    { name: 'keys ignored', template: { '{{ k }}': 'v' }, want: [] },
  ])('$name', ({ template, want }) => {
    expect(templatePlaceholders(template)).toEqual(want);
  });

  test.each([
    { name: 'unsupported', template: { x: ['ok {{ a }}', '{{ a * 2 }}'] }, msg: 'unsupported placeholder "{{ a * 2 }}" at /x/1' },
    { name: 'unclosed', template: '{{ a', msg: 'unclosed placeholder' },
  ])('rejects $name', ({ template, msg }) => {
    expect(() => templatePlaceholders(template)).toThrow(TemplateError);
    expect(() => templatePlaceholders(template)).toThrow(msg);
  });
});
