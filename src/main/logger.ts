import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { chooseLogFormat, type LogFormat } from '../domain/log-format.js';

const REDACT = {
  paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'token', 'apiKey', '*.token', '*.apiKey', 'secret', '*.secret', 'previousSecret', '*.previousSecret', 'headers["webhook-signature"]'],
  censor: '[redacted]',
};

export interface LoggerSettings {
  logLevel: string;
  logFormat?: LogFormat;
  inContainer?: boolean;
}

/**
 * The process logger. Authorization headers, tokens and keys are redacted wherever they appear.
 * JSON lines by default; one readable, coloured line per event when a person watches a terminal
 * (see chooseLogFormat). pino-pretty runs in this thread and writes synchronously rather than as
 * a transport in a worker thread, so the last lines before process.exit() are never lost.
 */
export function createLogger(settings: string | LoggerSettings): Logger {
  const s = typeof settings === 'string' ? { logLevel: settings } : settings;
  const format = chooseLogFormat({ override: s.logFormat, stdoutIsTty: Boolean(process.stdout.isTTY), inContainer: Boolean(s.inContainer) });
  if (format === 'json') return pino({ level: s.logLevel, redact: REDACT });
  const stream = pretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
  return pino({ level: s.logLevel, redact: REDACT }, stream);
}
