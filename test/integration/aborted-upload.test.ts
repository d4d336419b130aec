import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';

/**
 * A client that disconnects mid-body is the client's business: the service logs it below error
 * level, with the request id, and stays healthy; a real server error still logs at error level.
 * Checked on the JSON log of a real `fanout up`.
 */

/** Sends the headers and part of an NDJSON body, then drops the connection. */
async function abortedUpload(url: string, apiKey: string): Promise<void> {
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const body = '{"task":"echo"}\n' + Array.from({ length: 200 }, (_, i) => `"item-${i}"\n`).join('');
  socket.write(
    ['POST /v1/batches HTTP/1.1', 'Host: 127.0.0.1', `Authorization: Bearer ${apiKey}`, 'Content-Type: application/x-ndjson', `Content-Length: ${body.length * 10}`, '', ''].join('\r\n'),
  );
  socket.write(body);
  await sleep(100);
  socket.destroy();
}

const logLines = (output: string) =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));

describe('aborted uploads', () => {
  let c: Cluster;
  afterEach(async () => c?.stopAll());

  it('50 NDJSON uploads dropped mid-body: no error-level log line, each logged with its request id, no batch left', { timeout: 120_000 }, async () => {
    c = newCluster(inject('redisUrl'));
    const up = await c.up(['--task', 'echo=cat'], { LOG_LEVEL: 'debug' });
    await Promise.all(Array.from({ length: 50 }, () => abortedUpload(up.url, c.apiKey)));
    const aborted = await waitUntil('the aborts logged', () => {
      const lines = logLines(up.output()).filter((l) => l.msg === 'client went away before the request was read');
      return lines.length >= 50 ? lines : null;
    }, 20_000);
    for (const l of aborted) expect(l.requestId).toEqual(expect.any(String));
    const errors = logLines(up.output()).filter((l) => l.level >= 50);
    expect(errors).toEqual([]);
    // the service is fine and kept nothing of the dropped uploads
    const list = await c.client.json('GET', '/v1/batches');
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([]);
  });
});
