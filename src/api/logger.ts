// Logger options: pino with request ids, and secrets redacted wherever they could be logged
// (credential headers, passwords inside Redis URLs, the bootstrap key and webhook secrets).
import type { LoggerOptions } from 'pino';
import type { LogLevel } from '../config.ts';

export const REDACTED = '[redacted]';

/** redis://user:secret@host -> redis://user:[redacted]@host; anything unparsable is hidden whole. */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (!url.password) return value;
    url.password = REDACTED;
    return url.toString().replace(encodeURIComponent(REDACTED), REDACTED);
  } catch {
    return REDACTED;
  }
}

const SECRET_HEADERS = ['authorization', 'cookie', 'x-api-key', 'proxy-authorization'];

export function loggerOptions(level: LogLevel): LoggerOptions {
  return {
    level,
    redact: {
      paths: [
        ...SECRET_HEADERS.map((header) => `req.headers["${header}"]`),
        'res.headers["set-cookie"]',
        'redisUrl',
        '*.redisUrl',
        'config.redisUrl',
        // Access secrets, should a settings object or a project record ever be logged.
        'bootstrapKey',
        '*.bootstrapKey',
        'config.access.bootstrapKey',
        'webhookSecret',
        '*.webhookSecret',
      ],
      censor: (value: unknown) =>
        typeof value === 'string' && /^rediss?:/.test(value) ? redactUrl(value) : REDACTED,
    },
  };
}
