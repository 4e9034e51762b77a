/**
 * Package log: structured logs through winston. JSON by default (one object a line, for
 * log shippers), `text` for people at a terminal. Verbosity follows klog: -v 0-2 is info,
 * 3 and up adds debug.
 */
import winston from 'winston';

export type LogMeta = Record<string, unknown>;

export interface Logger {
  error(msg: string, meta?: LogMeta): void;
  warn(msg: string, meta?: LogMeta): void;
  info(msg: string, meta?: LogMeta): void;
  debug(msg: string, meta?: LogMeta): void;
  child(meta: LogMeta): Logger;
}

export interface LoggerOptions {
  /** klog-style verbosity; >= 3 enables debug. Default 0. */
  verbosity?: number;
  format?: 'json' | 'text';
  /** Silence everything (tests). */
  silent?: boolean;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = (opts.verbosity ?? 0) >= 3 ? 'debug' : 'info';
  const format =
    opts.format === 'text'
      ? winston.format.combine(
          winston.format.timestamp(),
          winston.format.printf(({ timestamp, level: lvl, message, ...rest }) => {
            const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
            return `${String(timestamp)} ${lvl.toUpperCase()} ${String(message)}${extra}`;
          }),
        )
      : winston.format.combine(
          winston.format.timestamp(),
          winston.format.errors({ stack: false }),
          winston.format.json(),
        );
  return winston.createLogger({
    level,
    format,
    silent: opts.silent ?? false,
    // Logs go to stderr so stdout stays free for what a command prints (paths, status).
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
}

/** A logger that drops everything; the default in unit tests. */
export function nopLogger(): Logger {
  return createLogger({ silent: true });
}

/** Message of an unknown thrown value, for log fields. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
