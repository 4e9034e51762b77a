/**
 * Package log: structured logs with klog's verbosity model. JSON by default
 * off a terminal (one object a line, for log shippers), human-readable text on one.
 *
 * Verbosity is klog's: `logger.v(n).info(...)` prints only when the process runs with
 * `-v n` or higher, so every message can carry the level upstream gives the same message.
 * Plain `info` is `v(0)`, and `debug` is `v(4)` (klog's "debug level"). `error` and `warn`
 * always print, whatever the verbosity, also through a `v(n)` logger (as logr's Error does).
 */

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

type Level = 'error' | 'warn' | 'info' | 'debug';

/**
 * Where records go: one line each, JSON (keys sorted, as winston's json format printed them)
 * or text (`TIMESTAMP LEVEL message {"field":…}`). Our own few lines instead of winston: a
 * record is built only once the verbosity check passed, with no format pipeline or stream
 * transport per line (winston was ~7 % CPU in the ServiceCIDR profile and ~15 MB RSS to load).
 */
class Sink {
  constructor(
    private readonly format: LogFormat,
    private readonly write: (line: string) => void,
    private readonly fields: LogMeta,
  ) {}

  child(meta: LogMeta): Sink {
    return new Sink(this.format, this.write, { ...this.fields, ...meta });
  }

  log(level: Level, message: string, meta?: LogMeta): void {
    const timestamp = new Date().toISOString();
    const rest: LogMeta = { ...this.fields, ...meta };
    if (this.format === 'text') {
      delete rest.level;
      delete rest.message;
      delete rest.timestamp;
      const extra = Object.keys(rest).length ? ' ' + stringify(rest) : '';
      this.write(`${timestamp} ${level.toUpperCase()} ${message}${extra}`);
      return;
    }
    rest.level = level;
    rest.message = message;
    rest.timestamp = timestamp;
    const sorted: LogMeta = {};
    for (const k of Object.keys(rest).sort()) sorted[k] = rest[k];
    this.write(stringify(sorted));
  }
}

/** JSON that never throws: errors print as their message, bigints as strings, cycles as "[Circular]". */
function stringify(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Error) return v.message;
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object') {
      if (seen.has(v)) return '[Circular]';
      seen.add(v);
    }
    return v;
  });
}

class KlogLogger implements Logger {
  /** v(n) loggers made from this one, so hot paths do not allocate one per call. */
  private readonly byLevel: KlogLogger[] = [];

  constructor(
    private readonly sink: Sink,
    private readonly verbosity: number,
    private readonly level: number,
  ) {}

  error(msg: string, meta?: LogMeta): void {
    this.sink.log('error', msg, meta);
  }

  warn(msg: string, meta?: LogMeta): void {
    this.sink.log('warn', msg, meta);
  }

  info(msg: string, meta?: LogMeta): void {
    if (this.level > this.verbosity) return;
    if (this.level >= DEBUG_LEVEL) this.sink.log('debug', msg, { v: this.level, ...meta });
    else if (this.level > 0) this.sink.log('info', msg, { v: this.level, ...meta });
    else this.sink.log('info', msg, meta);
  }

  debug(msg: string, meta?: LogMeta): void {
    if (Math.max(DEBUG_LEVEL, this.level) > this.verbosity) return;
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
  if (opts.silent) return NOP;
  // Logs go to stderr so stdout stays free for what a command prints (paths, status).
  const write = opts.write ?? ((line: string) => void process.stderr.write(line + '\n'));
  return new KlogLogger(new Sink(opts.format ?? defaultLogFormat(), write, {}), opts.verbosity ?? 0, 0);
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
