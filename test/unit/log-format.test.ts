import { describe, expect, test } from 'vitest';
import { chooseLogFormat, type LogFormatInputs } from '../../src/domain/log-format.js';

describe('chooseLogFormat', () => {
  test.each<{ why: string; in: LogFormatInputs; want: 'json' | 'pretty' }>([
    { why: 'a terminal on a workstation', in: { stdoutIsTty: true, inContainer: false }, want: 'pretty' },
    { why: 'piped or redirected', in: { stdoutIsTty: false, inContainer: false }, want: 'json' },
    { why: 'a container with a TTY (docker run -t)', in: { stdoutIsTty: true, inContainer: true }, want: 'json' },
    { why: 'a pod', in: { stdoutIsTty: false, inContainer: true }, want: 'json' },
    { why: 'forced json on a terminal', in: { override: 'json', stdoutIsTty: true, inContainer: false }, want: 'json' },
    { why: 'forced pretty through a pipe', in: { override: 'pretty', stdoutIsTty: false, inContainer: false }, want: 'pretty' },
    { why: 'forced pretty in a container', in: { override: 'pretty', stdoutIsTty: false, inContainer: true }, want: 'pretty' },
  ])('$why: $want', ({ in: inputs, want }) => {
    expect(chooseLogFormat(inputs)).toBe(want);
  });
});
