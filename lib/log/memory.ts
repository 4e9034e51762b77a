import type { LogMeta, Logger } from './index.js';
import { DEBUG_LEVEL } from './index.js';

export interface LogLine {
  level: 'error' | 'warn' | 'info' | 'debug';
  /** klog verbosity of an info line (0 for plain info, DEBUG_LEVEL for debug). */
  v: number;
  msg: string;
  meta?: LogMeta;
}

/**
 * Keeps every line in memory, at every verbosity, for unit tests: `printedAt(0)` is what a
 * process at `-v 0` would print.
 */
export class MemoryLogger implements Logger {
  constructor(
    readonly lines: LogLine[] = [],
    private readonly level = 0,
    private readonly meta: LogMeta = {},
  ) {}

  error(msg: string, meta?: LogMeta): void {
    this.push('error', 0, msg, meta);
  }

  warn(msg: string, meta?: LogMeta): void {
    this.push('warn', 0, msg, meta);
  }

  info(msg: string, meta?: LogMeta): void {
    this.push(this.level >= DEBUG_LEVEL ? 'debug' : 'info', this.level, msg, meta);
  }

  debug(msg: string, meta?: LogMeta): void {
    this.push('debug', Math.max(DEBUG_LEVEL, this.level), msg, meta);
  }

  child(meta: LogMeta): Logger {
    return new MemoryLogger(this.lines, this.level, { ...this.meta, ...meta });
  }

  v(level: number): Logger {
    return new MemoryLogger(this.lines, level, this.meta);
  }

  /** Lines a process running at `-v verbosity` would print. */
  printedAt(verbosity: number): LogLine[] {
    return this.lines.filter((l) => l.level === 'error' || l.level === 'warn' || l.v <= verbosity);
  }

  private push(level: LogLine['level'], v: number, msg: string, meta?: LogMeta): void {
    const all = { ...this.meta, ...meta };
    this.lines.push({ level, v, msg, ...(Object.keys(all).length ? { meta: all } : {}) });
  }
}
