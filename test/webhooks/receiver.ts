import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real webhook receiver on 127.0.0.1 for tests: records every request (headers, raw body) and
 * answers with the status `respond` returns (default 200). `close()` frees the port, so a
 * closed port can be tested too.
 */
export interface Received {
  headers: Record<string, string>;
  body: string;
  at: number;
}

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  respond: (r: Received) => number;
  close(): Promise<void>;
}

export async function startReceiver(port = 0, respond: (r: Received) => number = () => 200): Promise<Receiver> {
  const received: Received[] = [];
  const rec: Receiver = { url: '', port: 0, received, respond, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      received.push(r);
      res.writeHead(rec.respond(r), { 'content-type': 'text/plain' });
      res.end('ok from receiver');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  rec.port = (server.address() as AddressInfo).port;
  rec.url = `http://127.0.0.1:${rec.port}/hook`;
  rec.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return rec;
}
