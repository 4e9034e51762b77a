/**
 * Hands back what start-up used once the process has gone quiet.
 *
 * Start-up is the most allocation-heavy moment of an idle controller-manager: module sources
 * are parsed and compiled, every informer's first LIST or watch-list is decoded, the first
 * reconciles run. V8 grows its young generation and old space for that burst and keeps them;
 * with nothing left to allocate, no further collection comes that would shrink them again
 * (measured: an idle ts-kcm with two controllers held 8 MiB of new space with 2 MiB in use,
 * and its RSS rose slowly over 90 s instead of falling). Go's runtime, which
 * kube-controller-manager runs on, returns such memory by itself (its background scavenger).
 *
 * So once every controller's caches have synced, a MemorySettler samples the event loop's
 * utilization every `intervalMs`; the first time a whole interval was quiet (below
 * `quietUtilization`) it runs one full, memory-reducing collection (V8's "last resort"
 * flavour, which also shrinks the young generation) and stops. A process that never goes
 * quiet within `giveUpAfterMs` is using its heap and is left alone. It runs once per start;
 * later growth and shrinking are V8's own business.
 *
 * The collection needs V8's gc function: `--expose-gc` if node was started with it, else the
 * flag is set for the moment it takes to create a context that has it (node:v8's
 * setFlagsFromString). Where that fails, nothing happens.
 */
import type { Clock, TimerHandle } from '../clock/index.js';
import type { Logger } from '../log/index.js';

export interface MemorySettlerOptions {
  clock: Clock;
  logger: Logger;
  /** How often the event loop's utilization is sampled. Default 5 s. */
  intervalMs?: number;
  /** An interval whose utilization is below this is quiet. Default 0.05 (5 %). */
  quietUtilization?: number;
  /** Stop looking after this long without a quiet interval. Default 10 min. */
  giveUpAfterMs?: number;
  /** Utilization (0..1) of the loop since the previous call. Default: performance.eventLoopUtilization. */
  utilization?: () => number;
  /** The collection; false when it could not run. Default: fullCollection. */
  collect?: () => boolean;
  /** Resident set size in bytes, for the log line. Default: process.memoryUsage.rss. */
  rss?: () => number;
}

export class MemorySettler {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly quietUtilization: number;
  private readonly giveUpAfterMs: number;
  private readonly utilization: () => number;
  private readonly collect: () => boolean;
  private readonly rss: () => number;
  private timer?: TimerHandle;
  private startedAt = 0;
  /** True once the collection ran (or was tried). */
  settled = false;

  constructor(opts: MemorySettlerOptions) {
    this.clock = opts.clock;
    this.logger = opts.logger;
    this.intervalMs = opts.intervalMs ?? 5_000;
    this.quietUtilization = opts.quietUtilization ?? 0.05;
    this.giveUpAfterMs = opts.giveUpAfterMs ?? 10 * 60_000;
    this.utilization = opts.utilization ?? loopUtilization();
    this.collect = opts.collect ?? fullCollection;
    this.rss = opts.rss ?? (() => process.memoryUsage.rss());
  }

  start(): void {
    if (this.timer || this.settled) return;
    this.startedAt = this.clock.monotonicNow();
    this.utilization(); // the first interval starts now
    this.arm();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private arm(): void {
    this.timer = this.clock.setTimer(this.intervalMs, () => this.tick());
  }

  private tick(): void {
    this.timer = undefined;
    const busy = this.utilization();
    if (busy < this.quietUtilization) {
      this.settled = true;
      const before = this.rss();
      const started = this.clock.monotonicNow();
      const ran = this.collect();
      this.logger
        .v(2)
        .info(ran ? 'start-up settled: full collection ran' : 'start-up settled: no gc available', {
          utilization: Number(busy.toFixed(3)),
          ...(ran
            ? {
                rssBeforeMiB: Number((before / 2 ** 20).toFixed(1)),
                rssAfterMiB: Number((this.rss() / 2 ** 20).toFixed(1)),
                ms: Math.round(this.clock.monotonicNow() - started),
              }
            : {}),
        });
      return;
    }
    if (this.clock.monotonicNow() - this.startedAt >= this.giveUpAfterMs) return;
    this.arm();
  }
}

/** The event loop's utilization since the previous call (performance.eventLoopUtilization). */
function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return delta.utilization;
  };
}

type GcFunction = (options?: { type?: string; execution?: string; flavor?: string }) => void;
let gcFunction: GcFunction | null | undefined;

/** One full, memory-reducing, synchronous collection; false where V8's gc is not to be had. */
export function fullCollection(): boolean {
  if (gcFunction === undefined) gcFunction = findGc();
  if (!gcFunction) return false;
  gcFunction({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return true;
}

function findGc(): GcFunction | null {
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') return exposed as GcFunction;
  try {
    const v8 = process.getBuiltinModule('node:v8');
    const vm = process.getBuiltinModule('node:vm');
    v8.setFlagsFromString('--expose-gc');
    try {
      const fn = vm.runInNewContext('gc') as unknown;
      return typeof fn === 'function' ? (fn as GcFunction) : null;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
  } catch {
    return null;
  }
}
