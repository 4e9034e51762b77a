import { hostname } from 'node:os';
import PQueue from 'p-queue';
import type { Registry } from 'prom-client';
import type { Event, KubeObject } from '../api/index.js';
import { ApiError, isAlreadyExists, isNotFound } from '../client/errors.js';
import { Resources, type KubeClient } from '../client/types.js';
import { RealClock, type Clock, type TimerHandle } from '../clock/index.js';
import { errorMessage, nopLogger, type Logger } from '../log/index.js';
import { Counter, getOrCreate } from '../metrics/index.js';
import { formatMicroTime, formatTime } from '../api/index.js';
import {
  buildCoreEvent,
  CoreEventCorrelator,
  newCoreEventCache,
  type CoreCacheEntry,
  type CoreEvent,
} from './core.js';
import { aggregationKey, buildEvent, referenceOf, spamKey, type EventInput } from './event.js';
import { DEFAULT_SPAM_BURST, DEFAULT_SPAM_REFILL_MS, SpamFilter } from './ratelimit.js';
import type { EventRecorder, EventType } from './types.js';

/** client-go events/v1 figures: 1000 queued events at most, 12 tries 10 s apart, series finished after 6 min. */
const DEFAULTS = {
  maxQueued: 1000,
  maxTries: 12,
  retryDelayMs: 10_000,
  finishSeriesMs: 6 * 60_000,
  /** client-go refreshes series every 30 min; we write them every 30 s so counts stay close to live. */
  seriesFlushMs: 30_000,
  spamBurst: DEFAULT_SPAM_BURST,
  spamRefillMs: DEFAULT_SPAM_REFILL_MS,
};

export interface EventBroadcasterOptions extends Partial<typeof DEFAULTS> {
  client: KubeClient;
  clock?: Clock;
  logger?: Logger;
  registry?: Registry;
}

interface SeriesEntry {
  event: Event; // as last written (name, namespace, series)
  lastObserved: number;
  dirty: boolean;
}

/** Which Event API a recorder writes. */
export type EventApi = 'v1' | 'events.k8s.io/v1';

/** `at`: when it was recorded (timestamps say when it happened, not when the writer got to it). */
type QueuedEvent = EventInput & { api: EventApi; at: number };

/**
 * Writes Events off the caller's path: recorders enqueue (bounded), one worker writes, and a
 * token bucket per (source, object) drops floods — so a controller in a hot loop cannot flood
 * the apiserver. Two kinds of recorder share that machinery:
 *
 * - core/v1 (`newCoreRecorder`, what kube-controller-manager's controllers use): a repeat
 *   patches count, lastTimestamp and message of the first Event; similar events (same object,
 *   type and reason, ten different messages within 10 minutes) fold into one combined Event.
 * - events.k8s.io/v1 (`newRecorder`): a repeat within 6 minutes becomes a series on the first
 *   Event (count and lastObservedTime, patched in batches).
 *
 * Every write, series flushes included, goes through the one writer, so no write can
 * overwrite what another recorded meanwhile.
 */
export class EventBroadcaster {
  private readonly client: KubeClient;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly cfg: typeof DEFAULTS;
  private readonly spam: SpamFilter;
  /** One writer, so Events and their series patches go out in the order they were recorded. */
  private readonly queue = new PQueue({ concurrency: 1 });
  private readonly series = new Map<string, SeriesEntry>();
  private readonly correlator = new CoreEventCorrelator();
  private readonly coreEvents = newCoreEventCache();
  private readonly dropped?: Counter<'reason'>;
  private flushTimer?: TimerHandle;
  private stopped = false;
  private seq = 0;

  constructor(opts: EventBroadcasterOptions) {
    this.client = opts.client;
    this.clock = opts.clock ?? new RealClock();
    this.logger = (opts.logger ?? nopLogger()).child({ component: 'events' });
    this.cfg = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      if (opts[k] !== undefined) this.cfg[k] = opts[k];
    }
    this.spam = new SpamFilter(this.clock, this.cfg.spamBurst, this.cfg.spamRefillMs);
    const registry = opts.registry;
    if (registry) {
      this.dropped = getOrCreate(
        registry,
        'events_dropped_total',
        () =>
          new Counter({
            name: 'events_dropped_total',
            help: 'Events not written, by reason (rate_limited, queue_full, write_failed, abandoned).',
            labelNames: ['reason'],
            registers: [registry],
          }),
      );
    }
  }

  /** An events.k8s.io/v1 recorder reporting as `component`; instance defaults to client-go's `<component>-<hostname>`. */
  newRecorder(component: string, instance = `${component}-${hostname()}`): EventRecorder {
    return this.recorder('events.k8s.io/v1', component, instance);
  }

  /**
   * A core/v1 recorder with `source.component` = `component`, as kube-controller-manager's
   * controllers record (they set no `source.host`, so `host` defaults to none).
   */
  newCoreRecorder(component: string, host = ''): EventRecorder {
    return this.recorder('v1', component, host);
  }

  private recorder(api: EventApi, component: string, instance: string): EventRecorder {
    return {
      event: (regarding: KubeObject, type: EventType, reason: string, action: string, note: string) => {
        try {
          this.record({
            api,
            at: this.clock.now(),
            regarding: referenceOf(regarding),
            type,
            reason,
            action,
            note,
            reportingController: component,
            reportingInstance: instance,
          });
        } catch (err) {
          // Recording an event must never break the controller that records it.
          this.logger.error('could not record event', { err: errorMessage(err) });
        }
      },
    };
  }

  /** Stop taking events, write what is queued and pending series (bounded by `timeoutMs`). */
  async shutdown(timeoutMs = 5_000): Promise<void> {
    this.stopped = true;
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
    const done = (async () => {
      await this.queue.onIdle();
      await this.flushSeries(true);
    })();
    let timer: TimerHandle | undefined;
    await Promise.race([done, new Promise<void>((r) => (timer = this.clock.setTimer(timeoutMs, r)))]);
    timer?.cancel();
  }

  /**
   * Stop at once without writing anything more: queued events and pending series are
   * dropped (after a lost Lease, a write could land after the successor's).
   */
  abandon(): void {
    this.stopped = true;
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
    const dropped = this.queue.size;
    this.queue.clear();
    this.series.clear();
    if (dropped > 0) this.dropped?.inc({ reason: 'abandoned' }, dropped);
  }

  /** Resolves once the queue is empty (tests). */
  idle(): Promise<void> {
    return this.queue.onIdle();
  }

  /** Write pending series updates now (tests; the timer does this every seriesFlushMs). */
  flush(): Promise<void> {
    return this.queue.add(() => this.flushSeries(false));
  }

  private record(input: QueuedEvent): void {
    if (this.stopped) return;
    if (!this.spam.allow(spamKey(input))) {
      this.drop('rate_limited', input);
      return;
    }
    // Waiting events only, like client-go's buffered channel: the one being written has left it.
    if (this.queue.size >= this.cfg.maxQueued) {
      this.drop('queue_full', input);
      return;
    }
    void this.queue.add(() => this.writeLogged(input));
    // The event as klog shows it at -v 3 (upstream's recorders log every event at that level).
    this.logger.v(3).info('event', {
      object: `${input.regarding.namespace ? input.regarding.namespace + '/' : ''}${input.regarding.name ?? ''}`,
      kind: input.regarding.kind,
      type: input.type,
      reason: input.reason,
      message: input.note,
    });
  }

  private drop(reason: string, e: EventInput): void {
    this.dropped?.inc({ reason });
    this.logger.warn('dropping event', {
      dropReason: reason,
      reason: e.reason,
      type: e.type,
      object: `${e.regarding.namespace ? e.regarding.namespace + '/' : ''}${e.regarding.name ?? ''}`,
    });
  }

  /** Never rejects: a failed write is logged and the queue goes on with the next event. */
  private async writeLogged(input: QueuedEvent): Promise<void> {
    try {
      if (input.api === 'v1') await this.writeCore(input);
      else await this.write(input);
    } catch (err) {
      this.logger.error('unexpected error writing event', { err: errorMessage(err) });
    }
  }

  private async write(input: QueuedEvent): Promise<void> {
    const now = input.at;
    const key = aggregationKey(input);
    const existing = this.series.get(key);
    if (existing) {
      existing.lastObserved = now;
      const count = (existing.event.series?.count ?? 1) + 1;
      existing.event = { ...existing.event, series: { count, lastObservedTime: formatMicroTime(now) } };
      if (count > 2) {
        existing.dirty = true; // batched: written by the next flush
        this.ensureFlushTimer();
        return;
      }
      // The first repeat is written at once so the Event shows it is a series.
      await this.writeSeries(key, existing);
      return;
    }
    const ev = buildEvent(input, now, this.seq++);
    const created = await this.withRetries('create', () =>
      this.events().create(ev, { namespace: ev.metadata.namespace }),
    );
    if (created) {
      this.series.set(key, { event: created, lastObserved: now, dirty: false });
      this.ensureFlushTimer();
    }
  }

  /** core/v1: create, or count a repeat on the Event first written for it. */
  private async writeCore(input: QueuedEvent): Promise<void> {
    const now = input.at;
    const { key, message } = this.correlator.correlate(input, now);
    const prev = this.coreEvents.get(key);
    if (!prev) {
      const ev = buildCoreEvent(input, message, now, this.seq++);
      const created = await this.withRetries('create', () =>
        this.coreEventsClient().create(ev, { namespace: ev.metadata.namespace }),
      );
      if (created) this.coreEvents.set(key, cacheEntryOf(created, ev));
      return;
    }
    const count = prev.count + 1;
    const lastTimestamp = formatTime(now);
    const written = await this.withRetries('patch', async () => {
      try {
        return await this.coreEventsClient().patch(
          prev.name,
          { count, lastTimestamp, message },
          { type: 'strategic', namespace: prev.namespace },
        );
      } catch (err) {
        if (!isNotFound(err)) throw err;
        // The Event expired (apiserver event TTL) while it kept happening: write it again.
        const ev = buildCoreEvent(input, message, now, this.seq++);
        return this.coreEventsClient().create(
          { ...ev, count, firstTimestamp: prev.firstTimestamp },
          { namespace: ev.metadata.namespace },
        );
      }
    });
    if (written) this.coreEvents.set(key, { ...cacheEntryOf(written, prev), count });
    else this.coreEvents.delete(key);
  }

  private async writeSeries(key: string, entry: SeriesEntry): Promise<void> {
    entry.dirty = false;
    const { name, namespace } = entry.event.metadata;
    const series = entry.event.series;
    const patched = await this.withRetries('patch', async () => {
      try {
        return await this.events().patch(name!, { series }, { type: 'merge', namespace });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        // The Event expired (apiserver event TTL) while its series went on: start it again.
        const { resourceVersion: _rv, uid: _uid, ...meta } = entry.event.metadata;
        return this.events().create({ ...entry.event, metadata: meta }, { namespace });
      }
    });
    if (patched) entry.event = { ...patched, series: patched.series ?? series };
    else this.series.delete(key);
  }

  private ensureFlushTimer(): void {
    if (this.flushTimer || this.stopped) return;
    this.flushTimer = this.clock.setTimer(this.cfg.seriesFlushMs, () => {
      this.flushTimer = undefined;
      // Through the writer like every other write: a flush running beside it would overwrite
      // the counts of repeats recorded while its patch is in flight.
      void this.queue
        .add(() => this.flushSeries(false))
        .finally(() => {
          if (this.series.size > 0) this.ensureFlushTimer();
        });
    });
  }

  /** Write dirty series; forget series idle for finishSeriesMs (a later repeat starts a new Event). */
  private async flushSeries(all: boolean): Promise<void> {
    const now = this.clock.now();
    for (const [key, entry] of [...this.series]) {
      if (entry.dirty) await this.writeSeries(key, entry);
      if (all || now - entry.lastObserved >= this.cfg.finishSeriesMs) this.series.delete(key);
    }
  }

  private events() {
    return this.client.resource<Event>(Resources.events);
  }

  private coreEventsClient() {
    return this.client.resource<CoreEvent>(Resources.coreEvents);
  }

  /** Retry transport errors like client-go (12 tries, 10 s apart); API errors are final. */
  private async withRetries<E extends KubeObject>(
    verb: string,
    fn: () => Promise<E>,
  ): Promise<E | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (isAlreadyExists(err)) return undefined;
        const final = err instanceof ApiError || attempt >= this.cfg.maxTries || this.stopped;
        this.logger.error(
          final ? 'unable to write event, dropping it' : 'unable to write event, will retry',
          {
            verb,
            attempt,
            err: errorMessage(err),
          },
        );
        if (final) {
          this.dropped?.inc({ reason: 'write_failed' });
          return undefined;
        }
        await this.clock.sleep(this.cfg.retryDelayMs);
      }
    }
  }
}

function cacheEntryOf(
  written: KubeObject & Partial<Pick<CoreEvent, 'count' | 'firstTimestamp'>>,
  fallback: { count: number; firstTimestamp: string },
): CoreCacheEntry {
  return {
    name: written.metadata.name ?? '',
    namespace: written.metadata.namespace ?? 'default',
    count: written.count ?? fallback.count,
    firstTimestamp: written.firstTimestamp ?? fallback.firstTimestamp,
  };
}
