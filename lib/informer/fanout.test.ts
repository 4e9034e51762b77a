import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../api/index.js';
import { FakeClock } from '../clock/index.js';
import { Resources } from '../client/types.js';
import { nopLogger } from '../log/index.js';
import { FakeListWatch, listOf } from './fake-list-watch.js';
import { EventRing, FanOut } from './fanout.js';
import { DefaultSharedIndexInformer } from './shared-informer.js';
import { newIndexer } from './store.js';
import type { Store } from './store.js';
import { cm, RecordingHandler, turn, until } from './test-helpers.js';
import { DeletedFinalStateUnknown } from './types.js';

interface Spec {
  claims: string[];
}
type WithSpec = KubeObject & { spec?: Spec };

/** Plays the informer's part: write the store, then publish the matching event. */
class Source {
  private rv = 100;
  constructor(
    readonly store: Store,
    readonly fan: FanOut<KubeObject>,
  ) {}
  /** Writes a new object (never edits the stored one, as the informer does); returns it. */
  upsert(name: string, labels?: Record<string, string>, spec?: Spec): KubeObject {
    const obj: WithSpec = { ...cm(name, String(++this.rv), labels ? { labels } : {}) };
    if (spec) obj.spec = spec;
    const key = `ns1/${name}`;
    const old = this.store.put(key, obj);
    this.fan.publish(
      old ? { type: 'update', key, old, obj } : { type: 'add', key, obj, isInInitialList: false },
    );
    return obj;
  }
  remove(name: string): void {
    const key = `ns1/${name}`;
    const old = this.store.deleteKey(key);
    if (old) this.fan.publish({ type: 'delete', key, obj: old });
  }
  synced(): void {
    this.fan.markInitialListEnd();
  }
}

function setup(ringCapacity: number, chunkSize = 100) {
  const store = newIndexer();
  const errors: unknown[] = [];
  const fan = new FanOut(store, {
    clock: new FakeClock(),
    ringCapacity,
    chunkSize,
    onHandlerError: (e) => errors.push(e),
  });
  return { store, fan, src: new Source(store, fan), errors };
}

/** A handler that parks on a gate the test opens, like a handler awaiting a slow call. */
class GatedHandler extends RecordingHandler {
  private open = false;
  private waiters: (() => void)[] = [];
  release(): void {
    this.open = true;
    for (const w of this.waiters.splice(0)) w();
  }
  private gate(): Promise<void> | void {
    if (this.open) return;
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  override onAdd(obj: KubeObject, initial: boolean): Promise<void> | void {
    super.onAdd(obj, initial);
    return this.gate();
  }
  override onUpdate(old: KubeObject, obj: KubeObject): Promise<void> | void {
    super.onUpdate(old, obj);
    return this.gate();
  }
  override onDelete(obj: KubeObject | DeletedFinalStateUnknown): Promise<void> | void {
    super.onDelete(obj);
    return this.gate();
  }
}

describe('EventRing', () => {
  it('holds at most capacity events and forgets the oldest', () => {
    const r = new EventRing<number>(3);
    for (let i = 0; i < 5; i++) r.push(i * 10);
    expect([r.head, r.next, r.size]).toEqual([2, 5, 3]);
    expect([r.at(1), r.at(2), r.at(4), r.at(5)]).toEqual([undefined, 20, 40, undefined]);
  });
});

describe('FanOut', () => {
  it('keeps memory bounded with a blocked handler under 100k events, then converges it to the store', async () => {
    const { store, fan, src } = setup(256);
    const slow = new GatedHandler();
    const fast = new RecordingHandler();
    const slowReg = fan.addListener(slow, 0, false);
    fan.addListener(fast, 0, false);
    for (let i = 0; i < 300; i++) {
      src.upsert(`o${i}`);
      if (i % 50 === 49) await turn();
    }
    src.synced();
    let maxRing = 0;
    let n = 0;
    // 100k changes over 500 keys, 50 per event-loop turn (a busy watch): updates, deletes, re-creates.
    for (let batch = 0; n < 100_000; batch++) {
      for (let j = 0; j < 50; j++, n++) {
        const name = `o${(n * 7919) % 500}`;
        if (n % 11 === 0) src.remove(name);
        else src.upsert(name);
        maxRing = Math.max(maxRing, fan.ring.size);
      }
      await turn();
    }
    expect(maxRing).toBe(256);
    expect(slow.calls.length).toBe(1); // still parked on its very first event
    expect(slowReg.hasSynced()).toBe(false);
    // The fast handler kept up: it saw every single event, in order.
    expect(fast.calls.length).toBe(300 + 100_000 - countNoopDeletes());
    expect(fast.state).toEqual(storeState(store));

    slow.release();
    await fan.whenIdle();
    expect(slow.state).toEqual(storeState(store));
    expect(slowReg.hasSynced()).toBe(true);
    // It was re-synced from the store, not fed the 100k events.
    expect(slow.calls.length).toBeLessThan(1000);
  });

  it('re-syncs an invalidated handler: updates carry the last object it saw as old, lost deletes become tombstones of it', async () => {
    const { fan, src } = setup(4);
    const a1 = src.upsert('a', { app: 'one' }, { claims: ['c1'] }); // 101
    const b1 = src.upsert('b', { 'ipaddress.kubernetes.io/managed-by': 'ipallocator' }, { claims: ['c2'] }); // 102
    src.synced();
    const h = new GatedHandler();
    const updates: [KubeObject, KubeObject][] = [];
    const deletes: (KubeObject | DeletedFinalStateUnknown)[] = [];
    const origUpdate = h.onUpdate.bind(h);
    const origDelete = h.onDelete.bind(h);
    h.onUpdate = (o, n) => {
      updates.push([o, n]);
      return origUpdate(o, n);
    };
    h.onDelete = (o) => {
      deletes.push(o);
      return origDelete(o);
    };
    h.release();
    fan.addListener(h, 0, true);
    await fan.whenIdle();
    expect(h.calls).toEqual(['add ns1/a@101 initial', 'add ns1/b@102 initial']);
    // Re-gate: the next delivery parks until we release.
    (h as unknown as { open: boolean }).open = false;
    src.upsert('c'); // 103: delivered, then the handler parks
    await until(() => h.calls.length === 3, 'park');
    const a2 = src.upsert('a', { app: 'two' }, { claims: [] }); // 104
    src.remove('b');
    src.upsert('d'); // 105
    src.upsert('e'); // 106
    src.upsert('f'); // 107: ring of 4 has now dropped events the handler still needs
    expect(fan.ring.head).toBeGreaterThan(3);
    expect(fan.ring.size).toBe(4);
    h.release();
    await fan.whenIdle();
    expect(h.calls).toEqual([
      'add ns1/a@101 initial',
      'add ns1/b@102 initial',
      'add ns1/c@103',
      'update ns1/a@101->104',
      'add ns1/d@105',
      'add ns1/e@106',
      'add ns1/f@107',
      'delete ns1/b tombstone@102',
    ]);
    // The update recovered by the re-sync: `old` is the very object delivered before, whole.
    expect(updates).toHaveLength(1);
    expect(updates[0][0]).toBe(a1);
    expect(updates[0][0]).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { namespace: 'ns1', name: 'a', resourceVersion: '101', labels: { app: 'one' } },
      spec: { claims: ['c1'] },
    });
    expect(updates[0][1]).toBe(a2);
    // The lost delete: a tombstone of the last object delivered, labels and spec intact.
    expect(deletes).toHaveLength(1);
    const tomb = deletes[0] as DeletedFinalStateUnknown;
    expect(tomb).toBeInstanceOf(DeletedFinalStateUnknown);
    expect(tomb.key).toBe('ns1/b');
    expect(tomb.obj).toBe(b1);
    expect(tomb.obj).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        namespace: 'ns1',
        name: 'b',
        resourceVersion: '102',
        labels: { 'ipaddress.kubernetes.io/managed-by': 'ipallocator' },
      },
      spec: { claims: ['c2'] },
    });
  });

  it("informer relist keeps an unchanged object, so listeners keep sharing the store's object", async () => {
    const clock = new FakeClock();
    const lw = new FakeListWatch();
    lw.onList(listOf([cm('a', '1', { labels: { k: 'v' } }), cm('b', '2')], '10'));
    // The relist answers fresh, equal copies of a@1 and a changed b.
    lw.onList(listOf([cm('a', '1', { labels: { k: 'v' } }), cm('b', '20')], '30'));
    const informer = new DefaultSharedIndexInformer(Resources.configmaps, lw, {
      clock,
      logger: nopLogger(),
      reflector: { useWatchList: false, random: () => 0 },
    });
    const h = new RecordingHandler();
    informer.addEventHandler(h);
    const ac = new AbortController();
    const done = informer.run(ac.signal);
    await until(() => lw.streams.length === 1, 'watch');
    const a1 = informer.getIndexer().get('ns1/a');
    const b1 = informer.getIndexer().get('ns1/b');
    lw.current.errorEvent(410, 'Expired', 'too old resource version');
    await until(() => informer.stats().errors === 1, 'backoff');
    clock.advance(800);
    await until(() => lw.streams.length === 2, 'relist');
    await informer.whenHandlersIdle();
    expect(h.calls).toEqual(['add ns1/a@1 initial', 'add ns1/b@2 initial', 'update ns1/b@2->20']);
    expect(informer.getIndexer().get('ns1/a')).toBe(a1);
    expect(informer.getIndexer().get('ns1/b')).not.toBe(b1);
    ac.abort();
    await done;
  });

  it('serves a late handler from the store, then from its registration point, without duplicates', async () => {
    const { fan, src } = setup(1024, 2);
    for (const n of ['a', 'b', 'c', 'd']) src.upsert(n); // 101..104
    src.synced();
    const h = new RecordingHandler();
    const reg = fan.addListener(h, 0, true);
    await turn();
    expect(h.calls).toEqual(['add ns1/a@101 initial', 'add ns1/b@102 initial']);
    src.upsert('a'); // 105: already walked, comes from the ring
    src.upsert('d'); // 106: not walked yet, read at delivery time; the ring copy is skipped
    src.remove('c'); // never delivered, and never will be
    await fan.whenIdle();
    expect(h.calls).toEqual([
      'add ns1/a@101 initial',
      'add ns1/b@102 initial',
      'add ns1/d@106 initial',
      'update ns1/a@101->105',
    ]);
    expect(reg.hasSynced()).toBe(true);
  });

  it('stops delivering to a removed handler', async () => {
    const { fan, src } = setup(16);
    const h = new RecordingHandler();
    const reg = fan.addListener(h, 0, false);
    src.upsert('a');
    await fan.whenIdle();
    reg.remove();
    src.upsert('b');
    await fan.whenIdle();
    expect(h.calls).toEqual(['add ns1/a@101']);
    expect(fan.listenerCount()).toBe(0);
  });
});

function storeState(store: Store): Map<string, string> {
  return new Map(store.list().map((o) => [`ns1/${o.metadata.name}`, o.metadata.resourceVersion ?? '']));
}

/** Deletes of keys already absent publish nothing; count them the way the loop above does. */
function countNoopDeletes(): number {
  const present = new Set<string>();
  for (let i = 0; i < 300; i++) present.add(`o${i}`);
  let noop = 0;
  for (let n = 0; n < 100_000; n++) {
    const name = `o${(n * 7919) % 500}`;
    if (n % 11 === 0) {
      if (present.has(name)) present.delete(name);
      else noop++;
    } else present.add(name);
  }
  return noop;
}
