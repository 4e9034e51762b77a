/**
 * Package log: structured logs through winston with klog's verbosity model. JSON by default
 * off a terminal (one object a line, for log shippers), human-readable text on one.
 *
 * Verbosity is klog's: `logger.v(n).info(...)` prints only when the process runs with
 * `-v n` or higher, so every message can carry the level upstream gives the same message.
 * Plain `info` is `v(0)`, and `debug` is `v(4)` (klog's "debug level"). `error` and `warn`
 * always print, whatever the verbosity, also through a `v(n)` logger (as logr's Error does).
 */
import { Writable } from 'node:stream';
import winston from 'winston';

export type LogMeta = Record<string, unknown>;

export interface Logger {
  error(msg: string, meta?: LogMeta): void;
  warn(msg: string, meta?: LogMeta): void;
  info(msg: string, meta?: LogMeta): void;
  /** Shorthand for `v(DEBUG_LEVEL).info`. */
  debug(msg: string, meta?: LogMeta): void;
  child(meta: LogMeta): Logger;
  /** A logger whose info lines print only at verbosity >= `level` (klog's `V(level)`). */
  v(level: number): Logger;
}

/** klog's conventional level for debug output; `debug()` logs at it. */
export const DEBUG_LEVEL = 4;

export type LogFormat = 'json' | 'text';

export interface LoggerOptions {
  /** klog-style verbosity: info lines of `v(n)` print when n <= verbosity. Default 0. */
  verbosity?: number;
  /** Default: text when stderr is a terminal, json otherwise. */
  format?: LogFormat;
  /** Silence everything (tests). */
  silent?: boolean;
  /** Where lines go (tests); default stderr. */
  write?: (line: string) => void;
}

/** The format used when none is asked for: people read terminals, machines read the rest. */
export function defaultLogFormat(isTTY: boolean | undefined = process.stderr.isTTY): LogFormat {
  return isTTY ? 'text' : 'json';
}

class KlogLogger implements Logger {
  /** v(n) loggers made from this one, so hot paths do not allocate one per call. */
  private readonly byLevel: KlogLogger[] = [];

  constructor(
    private readonly sink: winston.Logger,
    private readonly verbosity: number,
    private readonly level: number,
  ) {}

  error(msg: string, meta?: LogMeta): void {
    this.sink.error(msg, meta);
  }

  warn(msg: string, meta?: LogMeta): void {
    this.sink.warn(msg, meta);
  }

  info(msg: string, meta?: LogMeta): void {
    if (this.level > this.verbosity) return;
    if (this.level >= DEBUG_LEVEL) this.sink.debug(msg, { v: this.level, ...meta });
    else if (this.level > 0) this.sink.info(msg, { v: this.level, ...meta });
    else this.sink.info(msg, meta);
  }

  debug(msg: string, meta?: LogMeta): void {
    this.v(Math.max(DEBUG_LEVEL, this.level)).info(msg, meta);
  }

  child(meta: LogMeta): Logger {
    return new KlogLogger(this.sink.child(meta), this.verbosity, this.level);
  }

  v(level: number): Logger {
    if (level === this.level) return this;
    return (this.byLevel[level] ??= new KlogLogger(this.sink, this.verbosity, level));
  }
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const format =
    (opts.format ?? defaultLogFormat()) === 'text'
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
  const write = opts.write;
  const sink = winston.createLogger({
    // Verbosity is decided by KlogLogger; winston passes everything it is handed.
    level: 'debug',
    format,
    silent: opts.silent ?? false,
    // Logs go to stderr so stdout stays free for what a command prints (paths, status).
    transports: write
      ? [
          new winston.transports.Stream({
            stream: new Writable({
              write(chunk: Buffer, _enc, cb) {
                write(chunk.toString().replace(/\n$/, ''));
                cb();
              },
            }),
          }),
        ]
      : [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
  return new KlogLogger(sink, opts.verbosity ?? 0, 0);
}

/** A logger that drops everything; the default in unit tests. */
export function nopLogger(): Logger {
  return NOP;
}

const NOP: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  child: () => NOP,
  v: () => NOP,
};

/** Message of an unknown thrown value, for log fields. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export { MemoryLogger, type LogLine } from './memory.js';
