import pino from 'pino';

/** The process logger. Authorization headers, tokens and keys are redacted wherever they appear. */
export function createLogger(level: string) {
  return pino({
    level,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'token', 'apiKey', '*.token', '*.apiKey', 'secret', '*.secret', 'previousSecret', '*.previousSecret', 'headers["webhook-signature"]'],
      censor: '[redacted]',
    },
  });
}
