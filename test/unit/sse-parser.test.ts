import { describe, expect, it } from 'vitest';
import { SseParser } from '../../sdk/src/index.js';

describe('SseParser', () => {
  const cases: Array<{ name: string; chunks: string[]; want: unknown[] }> = [
    { name: 'one event', chunks: ['event: progress\ndata: {"a":1}\nid: 7\nretry: 2000\n\n'], want: [{ event: 'progress', data: '{"a":1}', id: '7', retry: 2000 }] },
    { name: 'default event name', chunks: ['data: x\n\n'], want: [{ event: 'message', data: 'x', id: undefined }] },
    { name: 'multi-line data', chunks: ['data: a\ndata: b\n\n'], want: [{ event: 'message', data: 'a\nb', id: undefined }] },
    { name: 'split anywhere', chunks: ['ev', 'ent: done\nda', 'ta: 1', '\n', '\n'], want: [{ event: 'done', data: '1', id: undefined }] },
    { name: 'comment', chunks: [': ping\n\n'], want: [{ comment: 'ping' }] },
    { name: 'CRLF and CR split across chunks', chunks: ['data: a\r', '\n\r\n', 'data: b\r\r', 'data: c'], want: [{ event: 'message', data: 'a', id: undefined }, { event: 'message', data: 'b', id: undefined }] },
    { name: 'no data: no event', chunks: ['event: x\nid: 3\n\n'], want: [] },
    { name: 'id persists', chunks: ['id: 5\ndata: a\n\ndata: b\n\n'], want: [{ event: 'message', data: 'a', id: '5' }, { event: 'message', data: 'b', id: '5' }] },
    { name: 'no space after colon, unknown fields ignored', chunks: ['data:x\nfoo: bar\nretry: soon\n\n'], want: [{ event: 'message', data: 'x', id: undefined }] },
    { name: 'incomplete event is held', chunks: ['data: x\n'], want: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const p = new SseParser();
      expect(c.chunks.flatMap((chunk) => p.push(chunk))).toEqual(c.want);
    });
  }

  it('remembers the last id for Last-Event-ID', () => {
    const p = new SseParser();
    p.push('id: 41\ndata: a\n\nid: 42\n');
    expect(p.lastEventId).toBe('42');
  });
});
