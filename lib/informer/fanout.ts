/**
 * Bounded fan-out from one informer to many handlers.
 *
 * Design (after the kube-apiserver watch cache's "interval" over its cyclic buffer):
 *
 * - The informer writes every change to its store and then appends one event to a RING of
 *   fixed capacity (default 1024). Appending is O(1) and never waits for a handler, so a
 *   slow handler can never hold up the watch. When the ring is full the oldest event is
 *   dropped.
 * - Each handler is a LISTENER with a cursor: the sequence number of the next ring event it
 *   needs. The listener drains the ring asynchronously (setImmediate loop), at most
 *   `chunkSize` deliveries per turn, so one handler never monopolises the event loop.
 *   A handler may return a promise; the listener awaits it before the next delivery
 *   (that is how a handler is "slow" on a single thread).
 * - A listener whose cursor is older than the ring's tail has lost events: its interval is
 *   INVALID and it must not be served from the ring any more. It is re-synced from the
 *   store instead: a WALK over the store's live key iterator (no copy of the keys, objects
 *   read at delivery time, in bounded chunks) that delivers adds for keys it never saw and
 *   updates for keys whose resourceVersion differs from the one it last saw, then a walk
 *   over what it knew that is gone from the store, delivered as DeletedFinalStateUnknown
 *   tombstones. The cursor restarts at the ring head position taken when the walk began.
 * - Per listener we keep key -> the last object delivered (`known`): a REFERENCE, never a
 *   copy. A re-sync update carries it as `old` and a re-sync tombstone wraps it, so handlers
 *   that filter on labels or spec (an IPAddress's managed-by label, a pod's resourceClaims)
 *   see the same full object they would have been given from the ring. This is sound only
 *   because objects are never edited in place: the informer replaces a changed object with a
 *   new one (store.ts), and a relist keeps the stored object when its resourceVersion did
 *   not change, so an up-to-date listener's references are the store's own objects.
 * - While a walk has read a key's state at ring position p, ring events for that key with a
 *   sequence below p are already reflected and are skipped (`seenAt`); the map is dropped
 *   once the cursor passes the walk's end.
 * - A handler added to a running informer starts with the same walk (its "initial replay",
 *   adds flagged isInInitialList) and then continues from the ring position at
 *   registration. Its registration hasSynced() once the informer has synced and the
 *   listener has delivered everything up to the end of the initial list.
 *
 * Memory is therefore O(ring capacity + store size per listener), whatever the speed of
 * any handler. A listener's `known` is, in effect, the store as it stood at that listener's
 * position: an entry whose object is still in the store costs only the map entry; an entry
 * whose object was since replaced or deleted keeps that one superseded object alive until
 * the ring or a re-sync delivers the change. So a lagging listener pins at most one extra
 * object per key it knows (one past store's worth, shared by listeners at the same point),
 * however many events it missed.
 */
import type { KubeObject } from '../api/index.js';
import type { Clock, TimerHandle } from '../clock/index.js';
import type { Store } from './store.js';
import type { HandlerRegistration, ResourceEventHandler } from './types.js';
import { DeletedFinalStateUnknown } from './types.js';

export type FanoutEvent<T extends KubeObject> =
  | { type: 'add'; key: string; obj: T; isInInitialList: boolean }
  | { type: 'update'; key: string; old: T; obj: T }
  | { type: 'delete'; key: string; obj: T | DeletedFinalStateUnknown<T> };

/** A fixed-capacity queue addressed by ever-increasing sequence numbers. */
export class EventRing<E> {
  private readonly buf: (E | undefined)[];
  /** Sequence number of the oldest event still held. */
  head = 0;
  /** Sequence number the next pushed event gets. */
  next = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new Error(`ring capacity must be >= 1, got ${capacity}`);
    this.buf = new Array<E | undefined>(capacity);
  }

  push(e: E): void {
    if (this.next - this.head === this.capacity) {
      this.buf[this.head % this.capacity] = undefined;
      this.head++;
    }
    this.buf[this.next % this.capacity] = e;
    this.next++;
  }

  /** The event with sequence `seq`, or undefined if it was dropped or not yet pushed. */
  at(seq: number): E | undefined {
    if (seq < this.head || seq >= this.next) return undefined;
    return this.buf[seq % this.capacity];
  }

  get size(): number {
    return this.next - this.head;
  }
}

export interface FanoutOptions {
  /** Ring capacity; default 1024 events (the order of client-go's initial listener buffer). */
  ringCapacity?: number;
  /** Deliveries per listener per event-loop turn; default 100. */
  chunkSize?: number;
  clock: Clock;
  /** Called with whatever a handler threw (or its promise rejected with). */
  onHandlerError: (err: unknown, callback: 'onAdd' | 'onUpdate' | 'onDelete') => void;
}

type HandlerFn = (...args: never[]) => unknown;

export class FanOut<T extends KubeObject> {
  readonly ring: EventRing<FanoutEvent<T>>;
  readonly chunkSize: number;
  private readonly listeners = new Set<Listener<T>>();
  /** Ring position just after the first full list; undefined until the informer syncs. */
  initialListEnd: number | undefined;

  constructor(
    readonly store: Store<T>,
    readonly opts: FanoutOptions,
  ) {
    this.ring = new EventRing(opts.ringCapacity ?? 1024);
    this.chunkSize = opts.chunkSize ?? 100;
  }

  publish(ev: FanoutEvent<T>): void {
    this.ring.push(ev);
    for (const l of this.listeners) l.wake();
  }

  markInitialListEnd(): void {
    if (this.initialListEnd !== undefined) return;
    this.initialListEnd = this.ring.next;
    for (const l of this.listeners) l.wake();
  }

  /** `replay`: the informer is running, so the listener first walks the current store. */
  addListener(
    handler: ResourceEventHandler<T>,
    resyncPeriodMs: number,
    replay: boolean,
  ): HandlerRegistration {
    const l = new Listener(this, handler, resyncPeriodMs, replay);
    this.listeners.add(l);
    l.wake();
    return {
      hasSynced: () => l.hasSynced(),
      remove: () => {
        l.stop();
        this.listeners.delete(l);
      },
    };
  }

  listenerCount(): number {
    return this.listeners.size;
  }

  /** True when no listener has anything left to deliver. */
  idle(): boolean {
    for (const l of this.listeners) if (!l.idle()) return false;
    return true;
  }

  /** Resolves once every listener has caught up (tests and benchmarks). */
  async whenIdle(): Promise<void> {
    while (!this.idle()) await turn();
  }
}

interface Walk {
  phase: 'store' | 'gone';
  /** Initial replay of a late handler: adds are flagged isInInitialList. */
  initial: boolean;
  /** Periodic resync: re-deliver unchanged objects as updates with old === new. */
  periodic: boolean;
  it: Iterator<string>;
}

class Listener<T extends KubeObject> {
  private cursor: number;
  /** key -> the object this handler was last given (a shared reference; see the file comment). */
  private readonly known = new Map<string, T>();
  /** key -> ring position at which a walk read that key's state; see the file comment. */
  private seenAt: Map<string, number> | undefined;
  private seenUntil = 0;
  private walk: Walk | undefined;
  private running = false;
  private stopped = false;
  private synced = false;
  private periodicDue = false;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly fan: FanOut<T>,
    private readonly handler: ResourceEventHandler<T>,
    private readonly resyncPeriodMs: number,
    replay: boolean,
  ) {
    this.cursor = fan.ring.next;
    if (replay) this.startWalk({ initial: true, periodic: false });
    this.armResync();
  }

  hasSynced(): boolean {
    if (!this.synced) {
      const end = this.fan.initialListEnd;
      this.synced = end !== undefined && this.walk === undefined && this.cursor >= end;
    }
    return this.synced;
  }

  idle(): boolean {
    if (this.stopped) return true;
    return this.walk === undefined && !this.periodicDue && this.cursor >= this.fan.ring.next;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  wake(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    // Never run handler code inside the caller (the watch loop): start on a later turn.
    setImmediate(() => {
      this.drain().catch((err: unknown) => {
        this.running = false;
        this.fan.opts.onHandlerError(err, 'onUpdate');
      });
    });
  }

  private armResync(): void {
    if (!(this.resyncPeriodMs > 0) || this.stopped) return;
    this.timer = this.fan.opts.clock.setTimer(this.resyncPeriodMs, () => {
      this.periodicDue = true;
      this.wake();
      this.armResync();
    });
  }

  private startWalk(kind: { initial: boolean; periodic: boolean }): void {
    this.cursor = this.fan.ring.next;
    if (!kind.periodic) this.seenAt ??= new Map();
    this.walk = { phase: 'store', ...kind, it: this.fan.store.keysIterator() };
  }

  private async drain(): Promise<void> {
    const ring = this.fan.ring;
    // `running` is cleared in the same synchronous step that finds nothing left to do, so a
    // publish() can never slip between that check and the flag and be left undelivered.
    for (;;) {
      if (this.stopped) return void (this.running = false);
      let budget = this.fan.chunkSize;
      if (this.cursor < ring.head) {
        // Our interval lost events: serve nothing more from it; re-sync from the store. A walk
        // in progress restarts too, since keys it already visited may have changed unseen.
        // Until this handler has been given the whole initial list, the adds it lost were
        // initial ones and say so (a ring overflow during a big first LIST is routine).
        this.startWalk({ initial: (this.walk?.initial ?? false) || !this.hasSynced(), periodic: false });
      }
      if (this.walk) {
        budget = await this.stepWalk(budget);
      }
      // Stop at once if the ring overtook us meanwhile (a handler call can take many turns).
      while (budget > 0 && !this.walk && this.cursor < ring.next && this.cursor >= ring.head) {
        const seq = this.cursor++;
        budget -= await this.deliverEvent(seq, ring.at(seq)!);
        if (this.stopped) return void (this.running = false);
      }
      if (this.seenAt && !this.walk && this.cursor >= this.seenUntil) this.seenAt = undefined;
      this.hasSynced();
      if (!this.walk && this.cursor >= ring.next && this.cursor >= ring.head) {
        if (!this.periodicDue) return void (this.running = false);
        this.periodicDue = false;
        this.startWalk({ initial: false, periodic: true });
      }
      await turn();
    }
  }

  /** Deliver up to `budget` items of the current walk; returns the budget left. */
  private async stepWalk(budget: number): Promise<number> {
    const walk = this.walk!;
    const store = this.fan.store;
    while (budget > 0) {
      const r = walk.it.next();
      if (r.done) {
        if (walk.phase === 'store' && !walk.periodic) {
          walk.phase = 'gone';
          walk.it = this.known.keys();
          continue;
        }
        this.walk = undefined;
        if (!walk.periodic) this.seenUntil = this.fan.ring.next;
        return budget;
      }
      const key = r.value;
      if (walk.periodic) {
        const obj = store.get(key);
        // Changed objects are on their way through the ring; resync only re-delivers the unchanged.
        const last = this.known.get(key);
        if (obj && last && rvOf(last) === rvOf(obj)) {
          budget--;
          await this.call('onUpdate', obj, obj);
        }
        continue;
      }
      if (walk.phase === 'store') {
        this.seenAt!.set(key, this.fan.ring.next);
        const obj = store.get(key);
        if (!obj) continue;
        const last = this.known.get(key);
        this.known.set(key, obj);
        if (last === undefined) {
          budget--;
          await this.call('onAdd', obj, walk.initial);
        } else if (rvOf(last) !== rvOf(obj)) {
          budget--;
          await this.call('onUpdate', last, obj);
        }
        // (Same resourceVersion: nothing to deliver, and `known` now shares the store's object.)
      } else if (!store.has(key)) {
        this.seenAt!.set(key, this.fan.ring.next);
        const last = this.known.get(key)!;
        this.known.delete(key);
        budget--;
        await this.call('onDelete', new DeletedFinalStateUnknown<T>(key, last));
      }
      if (this.stopped) return 0;
    }
    return budget;
  }

  /** Returns 1 if the handler was called, 0 if the event was skipped. */
  private async deliverEvent(seq: number, ev: FanoutEvent<T>): Promise<number> {
    const seen = this.seenAt?.get(ev.key);
    if (seen !== undefined && seq < seen) return 0;
    const last = this.known.get(ev.key);
    switch (ev.type) {
      case 'add':
      case 'update': {
        if (last !== undefined && rvOf(last) === rvOf(ev.obj)) {
          this.known.set(ev.key, ev.obj); // nothing new to say; just share the store's object
          return 0;
        }
        this.known.set(ev.key, ev.obj);
        if (last === undefined) {
          await this.call('onAdd', ev.obj, ev.type === 'add' && ev.isInInitialList);
        } else {
          await this.call('onUpdate', ev.type === 'update' ? ev.old : last, ev.obj);
        }
        return 1;
      }
      case 'delete':
        if (last === undefined) return 0;
        this.known.delete(ev.key);
        await this.call('onDelete', ev.obj);
        return 1;
    }
  }

  private async call(name: 'onAdd' | 'onUpdate' | 'onDelete', ...args: unknown[]): Promise<void> {
    const fn = this.handler[name] as HandlerFn | undefined;
    if (!fn) return;
    try {
      const r = fn.apply(this.handler, args as never[]);
      if (r && typeof (r as PromiseLike<unknown>).then === 'function') await r;
    } catch (err) {
      this.fan.opts.onHandlerError(err, name);
    }
  }
}

function rvOf(obj: KubeObject): string {
  return obj.metadata?.resourceVersion ?? '';
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
