import { describe, expect, test } from 'vitest';
import { clientWentAway } from '../../src/domain/client-abort.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
const named = (message: string, name: string) => Object.assign(new Error(message), { name });

describe('clientWentAway', () => {
  test.each<{ why: string; err: unknown; aborted: boolean; want: boolean }>([
    { why: 'socket closed mid-body (Node IncomingMessage)', err: withCode('aborted', 'ECONNRESET'), aborted: false, want: true },
    { why: 'premature close of the body stream', err: withCode('Premature close', 'ERR_STREAM_PREMATURE_CLOSE'), aborted: false, want: true },
    { why: 'an AbortError', err: named('This operation was aborted', 'AbortError'), aborted: false, want: true },
    { why: 'any error once the request signal aborted', err: new Error('database is locked'), aborted: true, want: true },
    { why: 'a server error', err: new Error('database is locked'), aborted: false, want: false },
    { why: 'ECONNRESET of an outgoing call (Redis, a webhook)', err: withCode('read ECONNRESET', 'ECONNRESET'), aborted: false, want: false },
    { why: 'a thrown string', err: 'aborted', aborted: false, want: false },
    { why: 'null', err: null, aborted: false, want: false },
  ])('$why: $want', ({ err, aborted, want }) => {
    expect(clientWentAway(err, aborted)).toBe(want);
  });
});
