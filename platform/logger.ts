/**
 * Structured service logs (JSON lines on stderr; pretty enough for humans with `| jq`).
 * CLI output for people does not go through here: commands print to stdout themselves.
 */
import pino from 'pino';
import { readSetting } from './config';

export type Logger = pino.Logger;

export function createLogger(service: string): Logger {
  return pino(
    {
      name: service,
      level: readSetting('logLevel'),
      // Tokens and connection strings must never reach logs, even by accident in an object.
      redact: {
        paths: ['token', '*.token', 'databaseUrl', '*.databaseUrl', 'authorization'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
