/**
 * The reflector keeps a sink (the shared informer's store) equal to the apiserver's view of
 * one resource: an initial full state (paginated LIST, or a WatchList stream), then a WATCH
 * resumed from the last resourceVersion seen (bookmarks included). It never returns on its
 * own: every failure is logged, reported, and retried with backoff until the signal aborts.
 */
import type { KubeList, KubeObject, Status } from '../api/index.js';
import type { ListOptions, WatchEvent, WatchOptions } from '../client/types.js';
import { ApiError, isGone } from '../client/errors.js';
import type { Clock } from '../clock/index.js';
import type { Logger } from '../log/index.js';
import { errorMessage } from '../log/index.js';
import type { BackoffOptions } from './backoff.js';
import { Backoff } from './backoff.js';
import { metaNamespaceKey } from './store.js';
import type { InformerShard, ShardFilter } from './types.js';

/** The two calls a reflector needs; a ResourceClient is one. */
export interface ListWatcher<T extends KubeObject = KubeObject> {
  list(opts?: ListOptions): Promise<KubeList<T>>;
  watch(opts: WatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent<T>>;
}

/** Where the reflector writes. */
export interface ReflectorSink<T extends KubeObject = KubeObject> {
  /** The complete state at `resourceVersion`; whatever the sink holds that is not in `objs` is gone. */
  replace(objs: T[], resourceVersion: string): void | Promise<void>;
  event(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T): void;
}

export type ReflectorPhase = 'list' | 'watch' | 'watchlist';

export interface ReflectorOptions {
  /** For logs and metrics, e.g. `configmaps` or `servicecidrs.networking.k8s.io`. */
  name: string;
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  metadataOnly?: boolean;
  clock: Clock;
  logger: Logger;
  /** LIST page size; 500 like client-go. */
  pageSize?: number;
  /** Try a WatchList stream for the initial state; fall back to LIST for good if it fails. Default true. */
  useWatchList?: boolean;
  /** Re-watch when no event or bookmark arrived for this long. Default 150 s: bookmarks come about every 60 s. */
  inactivityTimeoutMs?: number;
  /**
   * Server-side watch timeout range, picked at random so watches do not expire together.
   * Default 25-30 s (client-go: 5-10 min). Short on purpose: a watch the server has not
   * closed `watchDeadlineGraceMs` after its timeoutSeconds is taken for a dead (half-open)
   * connection, so this range bounds how long a silent stall goes unnoticed — HTTP/1.1 has
   * no ping, and bookmarks (about once a minute) are too rare to notice it within 45 s, as
   * client-go's HTTP/2 health check does (30 s read idle + 15 s ping timeout).
   */
  minWatchTimeoutSeconds?: number;
  maxWatchTimeoutSeconds?: number;
  /** How long past its timeoutSeconds a watch may stay open before it is dropped. Default 5 s. */
  watchDeadlineGraceMs?: number;
  backoff?: BackoffOptions;
  random?: () => number;
  /** Every error is reported here (for metrics) after being logged. */
  onError?: (err: unknown, phase: ReflectorPhase) => void;
  /** List and watch one KEP-5866 share where the server serves it (InformerShard); turns WatchList off. */
  shard?: InformerShard;
}

export const INITIAL_EVENTS_END_ANNOTATION = 'k8s.io/initial-events-end';

/** Thrown internally when the inactivity guard gave up on a silent watch. */
export class WatchInactiveError extends Error {
  constructor(ms: number) {
    super(`no watch event or bookmark for ${Math.round(ms / 1000)}s`);
    this.name = 'WatchInactiveError';
  }
  /** Tells the transport the connection under this watch is likely dead (lib/client/h2.ts). */
  readonly connectionSuspect = true;
}

/** Thrown internally when the server kept a watch open well past its timeoutSeconds. */
export class WatchDeadlineError extends Error {
  constructor(ms: number) {
    super(`watch still open ${Math.round(ms / 1000)}s after it should have ended; connection taken for dead`);
    this.name = 'WatchDeadlineError';
  }
  /** Tells the transport the connection under this watch is likely dead (lib/client/h2.ts). */
  readonly connectionSuspect = true;
}

/** Thrown internally to end a watch when the shard's selector changed: list again with the new one. */
class ShardChangedError extends Error {
  constructor() {
    super('shard selector changed; relisting');
    this.name = 'ShardChangedError';
  }
}

/** Default server-side watch timeout range, in seconds (see ReflectorOptions). */
export const defaultMinWatchTimeoutSeconds = 25;
export const defaultMaxWatchTimeoutSeconds = 30;
const defaultWatchDeadlineGraceMs = 5_000;

/** Thrown internally when a WatchList stream ended before its initial-events-end bookmark. */
class WatchListIncompleteError extends Error {
  constructor() {
    super('watch list stream ended before the initial-events-end bookmark');
    this.name = 'WatchListIncompleteError';
  }
}

export class Reflector<T extends KubeObject = KubeObject> {
  private lastRV = '';
  private synced = false;
  /** Whether the current watch-list attempt got as far as delivering its initial state. */
  private initialDelivered = false;
  private watchListFailures = 0;
  private streamStartedAt = 0;
  private watchListEnabled: boolean;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  /** Counters for tests and benchmarks. */
  /** The message of the last failure logged as a warning; cleared by a successful list. */
  private lastWarned: string | undefined;
  /** Of a sharded reflector: the filter the server applied to the stored list (undefined: everything). */
  private shardApplied: ShardFilter | undefined;
  /** Whether the server applied the last list's shardSelector; 'unknown' before the first list. */
  private shardSupport: 'unknown' | 'honoured' | 'ignored' = 'unknown';
  /** Ends the current watch with an error (set while a watch runs). */
  private interruptStream: ((err: Error) => void) | undefined;
  readonly stats = { lists: 0, listPages: 0, watches: 0, relists: 0, shardRelists: 0, errors: 0 };

  constructor(
    private readonly lw: ListWatcher<T>,
    private readonly sink: ReflectorSink<T>,
    private readonly opts: ReflectorOptions,
  ) {
    // A shard's support is read from the list answer's shardInfo: LIST, never a WatchList stream.
    this.watchListEnabled = (opts.useWatchList ?? true) && !opts.shard;
    this.random = opts.random ?? Math.random;
    this.backoff = new Backoff(opts.clock, { random: this.random, ...opts.backoff });
  }

  lastSyncResourceVersion(): string {
    return this.lastRV;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  usingWatchList(): boolean {
    return this.watchListEnabled;
  }

  async run(signal: AbortSignal): Promise<void> {
    const unsubscribe = this.opts.shard?.subscribe(() => {
      if (this.shardRelistWanted()) this.interruptStream?.(new ShardChangedError());
    });
    try {
      await this.loop(signal);
    } finally {
      unsubscribe?.();
    }
  }

  /**
   * A sharded reflector lists again when the shard's selector moved away from the one the
   * server applied to the cache. Not when the server ignored the last selector: the cache holds
   * everything then, which covers any share (later relists still send the selector, so support
   * that appears is picked up).
   */
  private shardRelistWanted(): boolean {
    const shard = this.opts.shard;
    if (!shard || this.shardSupport === 'ignored') return false;
    return shard.current().selector !== this.shardApplied?.selector;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    let needList = true;
    while (!signal.aborted) {
      if (!needList && this.shardRelistWanted()) {
        needList = true;
        this.stats.shardRelists++;
      }
      let phase: ReflectorPhase = needList ? (this.watchListEnabled ? 'watchlist' : 'list') : 'watch';
      try {
        let events: number;
        if (phase === 'watchlist') {
          events = await this.watchList(signal);
        } else {
          if (phase === 'list') {
            await this.list(signal);
            phase = 'watch';
            // The share moved while we listed: the new one first, before any watch.
            if (this.shardRelistWanted()) {
              this.stats.shardRelists++;
              continue;
            }
          }
          needList = false;
          events = await this.watch(signal);
        }
        needList = false;
        // A server that closes every watch at once must not turn into a hot loop.
        if (events === 0 && this.opts.clock.now() - this.streamStartedAt < 1000 && !signal.aborted) {
          throw new Error('watch closed immediately without any event');
        }
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof ShardChangedError) {
          needList = true;
          this.stats.shardRelists++;
          continue; // not a failure: list the new share at once
        }
        this.report(err, phase);
        if (phase === 'watchlist' && !this.initialDelivered) {
          this.watchListFailures++;
          if (watchListRejected(err) || this.watchListFailures >= WATCH_LIST_ATTEMPTS) {
            this.opts.logger.warn('watch list failed; using paginated LIST from now on', {
              resource: this.opts.name,
              err: errorMessage(err),
            });
            this.watchListEnabled = false;
            needList = true;
            continue; // a missing feature is not an outage: no reason to wait before the LIST
          }
        }
        // Once its initial state is in, a broken watch-list stream is just a broken watch.
        if (phase === 'watchlist' && this.initialDelivered) needList = false;
        if (isGone(err)) {
          needList = true;
          this.stats.relists++;
        }
        // A watch dropped for silence has already waited its whole guard window, and the fix
        // is a new connection, not a pause: backing off here (up to 30 s after earlier
        // failures) would push a stall's recovery past 45 s.
        if (err instanceof WatchDeadlineError || err instanceof WatchInactiveError) continue;
        const delay = this.backoff.next();
        this.opts.logger.debug('retrying list/watch', {
          resource: this.opts.name,
          delayMs: Math.round(delay),
        });
        try {
          await this.opts.clock.sleep(delay, signal);
        } catch {
          break;
        }
      }
    }
  }

  private report(err: unknown, phase: ReflectorPhase): void {
    this.stats.errors++;
    const gone = isGone(err);
    const meta = { resource: this.opts.name, phase, err: errorMessage(err), resourceVersion: this.lastRV };
    // A 410 is routine (the watch window moved on); everything else deserves attention, once:
    // the same failure again (a CRD not installed yet, RBAC not granted) goes to debug, so a
    // long wait is one warning, not one per retry.
    const repeated = !gone && meta.err === this.lastWarned;
    if (gone) this.opts.logger.info('resourceVersion too old; relisting', meta);
    else if (repeated) this.opts.logger.debug('list/watch failed again', meta);
    else this.opts.logger.warn('list/watch failed', meta);
    if (!gone) this.lastWarned = meta.err;
    this.opts.onError?.(err, phase);
  }

  /** Paginated LIST; a continue token that expires mid-way restarts the list from the top. */
  private async list(signal: AbortSignal): Promise<void> {
    this.stats.lists++;
    let items: T[] = [];
    let cont: string | undefined;
    let rv: string;
    let restarts = 0;
    const filter = this.opts.shard?.current();
    const shardSelector = filter ? { shardSelector: filter.selector } : {};
    /** Whether the server echoed the selector; every page of one list must agree. */
    let honoured: boolean | undefined;
    for (;;) {
      if (signal.aborted) throw signal.reason;
      let page: KubeList<T>;
      try {
        page = await this.lw.list({
          ...this.selectors(),
          ...shardSelector,
          limit: this.opts.pageSize ?? 500,
          continue: cont,
        });
      } catch (err) {
        // The snapshot behind a continue token is compacted away after ~5 min; start over,
        // but not forever (a list that can never finish in time is a failure to back off from).
        if (cont !== undefined && isGone(err) && restarts < 3) {
          restarts++;
          this.report(err, 'list');
          items = [];
          cont = undefined;
          honoured = undefined;
          continue;
        }
        throw err;
      }
      this.stats.listPages++;
      if (filter) {
        // Pages answered by apiservers of two versions (an upgrade under way) do not make one state.
        const echoed = page.metadata?.shardInfo?.selector === filter.selector;
        if (honoured !== undefined && echoed !== honoured)
          throw new Error('the apiserver applied the shardSelector to some pages of the list only');
        honoured = echoed;
      }
      for (const item of page.items) items.push(item);
      rv = page.metadata?.resourceVersion ?? '';
      cont = page.metadata?.continue || undefined;
      if (!cont) break;
    }
    if (signal.aborted) throw signal.reason;
    const applied = filter && honoured ? filter : undefined;
    // Client-side filtering always: a server that says it applied the selector is held to it.
    if (applied) items = items.filter((o) => applied.admits(o));
    await this.sink.replace(items, rv);
    this.lastRV = rv;
    this.synced = true;
    this.lastWarned = undefined;
    if (filter) this.shardListed(applied);
  }

  /** Records what the stored list holds, says so when the server's support changed, tells the shard. */
  private shardListed(applied: ShardFilter | undefined): void {
    const support = applied ? 'honoured' : 'ignored';
    if (support !== this.shardSupport) {
      const log = this.opts.logger.v(2);
      if (applied)
        log.info('apiserver applies shardSelector (KEP-5866): list and watch carry this replica’s share', {
          resource: this.opts.name,
        });
      else
        log.info(
          'apiserver ignores shardSelector (KEP-5866): listing and watching everything, keys filtered on the client',
          { resource: this.opts.name },
        );
    }
    this.shardSupport = support;
    this.shardApplied = applied;
    this.opts.shard!.listed(applied);
  }

  private watch(signal: AbortSignal): Promise<number> {
    return this.stream(signal, { resourceVersion: this.lastRV }, false);
  }

  /** Initial state as a stream: ADDED events, then a bookmark annotated initial-events-end. */
  private watchList(signal: AbortSignal): Promise<number> {
    this.initialDelivered = false;
    return this.stream(signal, { sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan' }, true);
  }

  private selectors(): ListOptions {
    const o = this.opts;
    const sel: ListOptions = {};
    if (o.namespace) sel.namespace = o.namespace;
    if (o.labelSelector) sel.labelSelector = o.labelSelector;
    if (o.fieldSelector) sel.fieldSelector = o.fieldSelector;
    if (o.metadataOnly) sel.metadataOnly = true;
    return sel;
  }

  private timeoutSeconds(): number {
    const min = this.opts.minWatchTimeoutSeconds ?? defaultMinWatchTimeoutSeconds;
    const max = this.opts.maxWatchTimeoutSeconds ?? defaultMaxWatchTimeoutSeconds;
    return Math.floor(min + (max - min) * this.random());
  }

  /**
   * One watch connection. Returns when the server closes it; throws on errors, on a
   * silent connection (inactivity guard) and, for a WatchList, when it ends too early.
   */
  private async stream(signal: AbortSignal, extra: WatchOptions, initial: boolean): Promise<number> {
    this.stats.watches++;
    const clock = this.opts.clock;
    this.streamStartedAt = clock.now();
    let events = 0;
    const inactivityMs = this.opts.inactivityTimeoutMs ?? 150_000;
    const timeoutSeconds = this.timeoutSeconds();
    const deadlineMs =
      timeoutSeconds * 1000 + (this.opts.watchDeadlineGraceMs ?? defaultWatchDeadlineGraceMs);
    const startedAt = clock.now();
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let lastEventAt = startedAt;
    let guardError: Error | undefined;
    this.interruptStream = (err) => {
      guardError = err;
      ac.abort(err);
    };
    const shard = this.shardApplied;
    // One check timer re-armed every fifth of the inactivity window (or sooner, at the
    // deadline) rather than a timer per event.
    const nextCheck = () => Math.max(1, Math.min(inactivityMs / 5, startedAt + deadlineMs - clock.now()));
    let timer = clock.setTimer(nextCheck(), function check() {
      const now = clock.now();
      if (now - lastEventAt >= inactivityMs) guardError = new WatchInactiveError(inactivityMs);
      else if (now - startedAt >= deadlineMs)
        guardError = new WatchDeadlineError(now - startedAt - timeoutSeconds * 1000);
      if (guardError) ac.abort(guardError);
      else timer = clock.setTimer(nextCheck(), check);
    });
    let pending: Map<string, T> | undefined = initial ? new Map() : undefined;
    try {
      const opts: WatchOptions = {
        ...this.selectors(),
        ...(shard ? { shardSelector: shard.selector } : {}),
        allowWatchBookmarks: true,
        timeoutSeconds,
        ...extra,
      };
      for await (const ev of this.lw.watch(opts, ac.signal)) {
        lastEventAt = clock.now();
        events++;
        if (ev.type === 'ERROR') throw errorFromStatus(ev.object as unknown as Status, this.opts.name);
        const obj = ev.object;
        const rv = obj?.metadata?.resourceVersion;
        if (ev.type === 'BOOKMARK') {
          if (pending && obj?.metadata?.annotations?.[INITIAL_EVENTS_END_ANNOTATION] === 'true') {
            await this.sink.replace([...pending.values()], rv ?? '');
            pending = undefined;
            this.synced = true;
            this.lastWarned = undefined;
            this.initialDelivered = true;
            this.watchListFailures = 0;
          }
          if (rv) this.lastRV = rv;
          continue;
        }
        if (shard && !shard.admits(obj)) {
          // Another replica's object: an apiserver that does not filter (a mixed-version
          // control plane) sent it. namespace and uid never change, so it never was ours.
          if (rv) this.lastRV = rv;
          continue;
        }
        if (pending) {
          // Still receiving the initial state: collect it, apply it whole at the bookmark.
          if (ev.type === 'DELETED') pending.delete(metaNamespaceKey(obj));
          else pending.set(metaNamespaceKey(obj), obj);
        } else {
          this.sink.event(ev.type, obj);
          if (rv) this.lastRV = rv;
        }
      }
      if (guardError) throw guardError;
      if (pending) throw new WatchListIncompleteError();
      return events;
    } catch (err) {
      if (guardError) throw guardError;
      if (signal.aborted) return events;
      throw err;
    } finally {
      this.interruptStream = undefined;
      timer.cancel();
      signal.removeEventListener('abort', onAbort);
      ac.abort(); // whatever ended the stream, never leave its connection open
    }
  }
}

/** Transport failures get this many tries before the watch list is given up for LIST. */
const WATCH_LIST_ATTEMPTS = 3;

/**
 * The server answered the watch-list request and said no (feature gate off, parameters
 * invalid, not allowed), or accepted it but never delivered the initial-events-end
 * bookmark: retrying will not help. Transport errors and overload (429, 5xx) might.
 */
function watchListRejected(err: unknown): boolean {
  if (err instanceof WatchListIncompleteError || err instanceof WatchInactiveError) return true;
  return err instanceof ApiError && err.code >= 400 && err.code < 500 && err.code !== 429;
}

function errorFromStatus(status: Status | undefined, resource: string): ApiError {
  const code = status?.code ?? 500;
  return new ApiError({
    code,
    reason: status?.reason,
    message: status?.message ?? `watch ERROR event (code ${code})`,
    status,
    verb: 'watch',
    resource,
  });
}
