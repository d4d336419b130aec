import { describe, expect, it } from 'vitest';
import { plainCommandWords } from '../../src/domain/command-words.js';

describe('plainCommandWords', () => {
  it.each([
    ['rev', ['rev']],
    ['  rev  ', ['rev']],
    ['tr a-z A-Z', ['tr', 'a-z', 'A-Z']],
    ['/usr/bin/env  python3 -u ./job.py --mode=fast', ['/usr/bin/env', 'python3', '-u', './job.py', '--mode=fast']],
    ['curl -s -H x:y user@host:8080/a,b%20c+d', ['curl', '-s', '-H', 'x:y', 'user@host:8080/a,b%20c+d']],
    ['true', ['true']],
    ['false', ['false']],
  ])('runs %j directly as %j', (command, words) => {
    expect(plainCommandWords(command)).toEqual(words);
  });

  it.each([
    ['', 'empty'],
    ['   ', 'blank'],
    ['rev | cat', 'pipe'],
    ['cat; exit 3', 'list'],
    ['echo "a b"', 'double quotes'],
    ["echo 'a'", 'single quotes'],
    ['echo $HOME', 'expansion'],
    ['ls *.txt', 'glob'],
    ['ls file?', 'glob ?'],
    ['ls [ab]', 'glob []'],
    ['cat ~/x', 'tilde'],
    ['cat < in', 'redirection'],
    ['sleep 1 &', 'background'],
    ['echo a\\ b', 'backslash'],
    ['rev\tx', 'tab'],
    ['rev\nid', 'newline'],
    ['echo `id`', 'backquote'],
    ['(rev)', 'subshell'],
    ['{ rev; }', 'group'],
    ['echo #x', 'comment'],
    ['echo !x', 'history/negation'],
    ['FOO=1 rev', 'assignment'],
    ['exit 3', 'builtin exit'],
    ['cd /tmp', 'builtin cd'],
    ['. ./env.sh', 'builtin dot'],
    [': noop', 'builtin colon'],
    ['exec rev', 'builtin exec'],
    ['if true', 'keyword'],
    ['echo -e plain', 'builtin echo (differs from /bin/echo)'],
    ['printf %s x', 'builtin printf'],
    ['kill -l', 'builtin kill'],
    ['-x', 'option as program'],
    ['rév', 'non-ASCII'],
  ])('keeps the shell for %j (%s)', (command) => {
    expect(plainCommandWords(command)).toBeNull();
  });
});
