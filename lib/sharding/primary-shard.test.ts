import { describe, expect, it } from '@jest/globals';
import type { KubeList, KubeObject } from '../api/index.js';
import { FakeKubeClient } from '../client/index.js';
import type { FakeAction } from '../client/index.js';
import { FakeClock } from '../clock/index.js';
import type { ControllerDefinition } from '../controller/types.js';
import { DefaultSharedInformerFactory } from '../informer/factory.js';
import type { DefaultSharedIndexInformer } from '../informer/shared-informer.js';
import { DeletedFinalStateUnknown } from '../informer/types.js';
import { metaNamespaceKey } from '../informer/store.js';
import { until } from '../informer/test-helpers.js';
import type { Logger } from '../log/index.js';
import { resourceRef } from '../sdk/resource.js';
import { newRateLimitingQueue } from '../workqueue/index.js';
import { controllerSharding } from './controller.js';
import { fnv1a64 } from './hash.js';
import { ShardMembership } from './membership.js';
import { shardedQueue } from './queue.js';
import { inSortedShardRanges, shardSelector, WHOLE_HASH_SPACE } from './selector.js';
import type { ShardRange } from './selector.js';
import { deferred } from './testing.js';

const widgets = resourceRef({
  group: 'example.com',
  version: 'v1',
  resource: 'widgets',
  kind: 'Widget',
  namespaced: true,
});

const objects: KubeObject[] = Array.from({ length: 120 }, (_, i) => ({
  apiVersion: 'example.com/v1',
  kind: 'Widget',
  metadata: { namespace: `ns-${i % 24}`, name: `w-${i}` },
}));
const allKeys = objects.map((o) => metaNamespaceKey(o)).sort();

const selectable: Pick<ControllerDefinition, 'name' | 'sharding'> = {
  name: 'widgets',
  sharding: { shardable: true, shardField: 'object.metadata.namespace', primaryCache: 'owned' },
};

/** What a KEP-5866 apiserver does with `shardRange(object.metadata.namespace, …) || …`. */
function parseRanges(selector: string): ShardRange[] {
  const re = /shardRange\(object\.metadata\.namespace, '(0x[0-9a-f]+)', '(0x[0-9a-f]+)'\)/g;
  return [...selector.matchAll(re)].map((m) => ({ start: BigInt(m[1]!), end: BigInt(m[2]!) }));
}

/** Makes `fake` answer widget lists as a KEP-5866 apiserver: only the selected share, echoing the selector. */
function serveShardSelector(fake: FakeKubeClient, hold?: () => Promise<unknown> | undefined): void {
  fake.prependReactor('list', 'widgets', async (a) => {
    const selector = (a.options as { shardSelector?: string } | undefined)?.shardSelector;
    if (!selector) return undefined;
    await hold?.();
    const ranges = parseRanges(selector);
    return {
      metadata: { resourceVersion: fake.tracker.resourceVersion, shardInfo: { selector } },
      items: fake.tracker
        .list(widgets)
        .filter((o) => inSortedShardRanges(fnv1a64(o.metadata.namespace ?? ''), ranges)),
    } satisfies KubeList;
  });
}

function recordingLogger(lines: string[], v = 0): Logger {
  const logger: Logger = {
    error: (msg) => void lines.push(`error ${msg}`),
    warn: (msg) => void lines.push(`warn ${msg}`),
    info: (msg) => void lines.push(`v${v} ${msg}`),
    debug: (msg) => void lines.push(`v4 ${msg}`),
    child: () => logger,
    v: (level) => recordingLogger(lines, level),
  };
  return logger;
}

/** One replica: its membership, the controller's sharding, its primary informer and queue. */
function replica(fake: FakeKubeClient, clock: FakeClock, identity: string, signal: AbortSignal) {
  const membership = new ShardMembership({
    client: fake,
    namespace: 'kube-system',
    ring: 'r',
    identity,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    clock,
  });
  const sharding = controllerSharding(membership, selectable);
  const logs: string[] = [];
  const factory = new DefaultSharedInformerFactory(fake, { clock, logger: recordingLogger(logs) });
  const informer = factory.informerFor(widgets, {
    shard: sharding.primaryShard!,
  }) as DefaultSharedIndexInformer;
  const inner = newRateLimitingQueue<string>({ name: identity, clock });
  const queue = shardedQueue(inner, sharding, {
    controller: 'widgets',
    keys: () => informer.getIndexer().listKeys(),
  });
  informer.addEventHandler({
    onAdd: (o) => queue.add(metaNamespaceKey(o)),
    onUpdate: (_old, o) => queue.add(metaNamespaceKey(o)),
    onDelete: (o) => queue.add(o instanceof DeletedFinalStateUnknown ? o.key : metaNamespaceKey(o)),
  });
  factory.start(signal);
  const cached = () => informer.getIndexer().listKeys().sort();
  /** The keys the ring gives this replica (whatever is cached). */
  const ringOwned = () =>
    allKeys.filter((k) => {
      const s = membership.state();
      return s.active && s.ring.ownerOfHash(fnv1a64(k.split('/')[0]!)) === identity;
    });
  const drain = async (): Promise<string[]> => {
    const got: string[] = [];
    while (inner.len() > 0) {
      const k = (await queue.get())!;
      got.push(k);
      queue.done(k);
    }
    return got.sort();
  };
  return { membership, sharding, informer, queue, inner, logs, cached, ringOwned, drain };
}

const widgetActions = (fake: FakeKubeClient, verb: 'list' | 'watch'): FakeAction[] =>
  fake.actions.filter((a) => a.resource === 'widgets' && a.verb === verb);
const selectorOf = (a: FakeAction | undefined): string | undefined =>
  (a?.options as { shardSelector?: string } | undefined)?.shardSelector;

/** Ticks the given replicas' memberships every retry period for `ms`. */
async function tick(clock: FakeClock, ms: number, ...rs: { membership: ShardMembership }[]): Promise<void> {
  for (let t = 0; t < ms; t += 2_000) {
    for (const r of rs) await r.membership.tick();
    clock.advance(2_000);
  }
  for (const r of rs) await r.membership.tick();
}

describe('a sharded controller’s primary informer (KEP-5866 shardSelector)', () => {
  it('with a server that applies it: each replica lists and watches only its ring share', async () => {
    const clock = new FakeClock();
    const fake = new FakeKubeClient(structuredClone(objects), { clock, resources: [widgets] });
    serveShardSelector(fake);
    const ac = new AbortController();
    const a = replica(fake, clock, 'a', ac.signal);
    const b = replica(fake, clock, 'b', ac.signal);
    // Before it is in a ring a replica lists with the whole hash space: support is known at once.
    await until(() => a.informer.hasSynced() && b.informer.hasSynced(), 'sync');
    expect(selectorOf(widgetActions(fake, 'list')[0])).toBe(
      shardSelector('object.metadata.namespace', [...WHOLE_HASH_SPACE]),
    );
    expect(a.cached()).toEqual(allKeys);

    await tick(clock, 18_000, a, b);
    expect([a.membership.state().active, b.membership.state().active]).toEqual([true, true]);
    await until(() => a.cached().length < allKeys.length && b.cached().length < allKeys.length, 'narrow');
    // Each cache is exactly what the ring gives that replica: together every object, once.
    expect(a.cached()).toEqual(a.ringOwned());
    expect(b.cached()).toEqual(b.ringOwned());
    expect([...a.cached(), ...b.cached()].sort()).toEqual(allKeys);
    expect(a.cached().length).toBeGreaterThan(0);
    expect(b.cached().length).toBeGreaterThan(0);
    for (const k of allKeys) expect(a.sharding.owns(k)).toBe(a.ringOwned().includes(k));
    // The watch carries the selector its list was answered with.
    const lists = widgetActions(fake, 'list').map(selectorOf);
    const watches = widgetActions(fake, 'watch').map(selectorOf);
    expect(new Set(watches.slice(-2))).toEqual(new Set(lists.slice(-2)));
    expect(a.logs).toContain(
      'v2 apiserver applies shardSelector (KEP-5866): list and watch carry this replica’s share',
    );
    ac.abort();
  });

  it('hands a dead replica’s share over only once the survivor’s relist has cached it', async () => {
    const clock = new FakeClock();
    const fake = new FakeKubeClient(structuredClone(objects), { clock, resources: [widgets] });
    let gate: ReturnType<typeof deferred> | undefined;
    serveShardSelector(fake, () => gate?.promise);
    const ac = new AbortController();
    const a = replica(fake, clock, 'a', ac.signal);
    const b = replica(fake, clock, 'b', ac.signal);
    await tick(clock, 18_000, a, b);
    await until(() => a.cached().length + b.cached().length === allKeys.length, 'narrow');
    const mine = a.cached();
    const theirs = b.cached();
    await a.informer.whenHandlersIdle();
    expect(await a.drain()).toEqual(mine);

    // b dies (stops renewing); a drops it one lease duration after it last saw b's record change.
    gate = deferred();
    const listsBefore = widgetActions(fake, 'list').length;
    await tick(clock, 18_000, a);
    expect(a.membership.state().ring.members).toEqual(['a']);
    await until(() => widgetActions(fake, 'list').length > listsBefore, 'relist');
    expect(selectorOf(widgetActions(fake, 'list').at(-1))).toBe(
      shardSelector('object.metadata.namespace', [...WHOLE_HASH_SPACE]),
    );
    // The ring gives a b's keys, but they are not cached yet: not admitted, not reconciled.
    expect(a.ringOwned()).toEqual(allKeys);
    for (const k of theirs) expect(a.sharding.owns(k)).toBe(false);
    for (const k of mine) expect(a.sharding.owns(k)).toBe(true);
    a.queue.add(theirs[0]!);
    expect(a.inner.len()).toBe(0);

    await a.informer.whenHandlersIdle();
    expect(a.inner.len()).toBe(0); // the narrowing's tombstones for b's keys were not admitted either
    gate.resolve();
    gate = undefined;
    await until(() => a.cached().length === allKeys.length, 'cache widened');
    await a.informer.whenHandlersIdle();
    for (const k of allKeys) expect(a.sharding.owns(k)).toBe(true);
    // Every gained key is queued now (from the cache, and by its add event), with its object cached.
    expect(await a.drain()).toEqual(theirs);
    ac.abort();
  });

  it('with a v1.35 server (no echo): lists and watches everything once, never relists for a new ring', async () => {
    const clock = new FakeClock();
    const fake = new FakeKubeClient(structuredClone(objects), { clock, resources: [widgets] });
    const ac = new AbortController();
    const a = replica(fake, clock, 'a', ac.signal);
    const b = replica(fake, clock, 'b', ac.signal);
    await until(() => a.informer.hasSynced() && b.informer.hasSynced(), 'sync');
    await tick(clock, 18_000, a, b);
    expect([a.membership.state().active, b.membership.state().active]).toEqual([true, true]);
    // One list per replica, which sent the selector and got everything; watches without it.
    const lists = widgetActions(fake, 'list');
    expect(lists).toHaveLength(2);
    expect(lists.every((l) => selectorOf(l) !== undefined)).toBe(true);
    expect(widgetActions(fake, 'watch').every((w) => selectorOf(w) === undefined)).toBe(true);
    expect(a.cached()).toEqual(allKeys);
    // Client-side filtering: each replica admits the keys its ring gives it, together all once.
    const ownedA = allKeys.filter((k) => a.sharding.owns(k));
    const ownedB = allKeys.filter((k) => b.sharding.owns(k));
    expect(ownedA).toEqual(a.ringOwned());
    expect([...ownedA, ...ownedB].sort()).toEqual(allKeys);
    expect(a.logs.filter((l) => l.includes('shardSelector'))).toEqual([
      'v2 apiserver ignores shardSelector (KEP-5866): listing and watching everything, keys filtered on the client',
    ]);
    // b dies: a takes its keys at once, from the full cache, with no relist.
    await tick(clock, 18_000, a);
    expect(a.membership.state().ring.members).toEqual(['a']);
    for (const k of allKeys) expect(a.sharding.owns(k)).toBe(true);
    expect(widgetActions(fake, 'list')).toHaveLength(2);
    ac.abort();
  });
});

describe('checkShardingDeclaration', () => {
  it('rejects primaryCache owned without a shardField, and a uid field without a shardKey', () => {
    const clock = new FakeClock();
    const m = new ShardMembership({
      client: new FakeKubeClient([], { clock }),
      namespace: 'kube-system',
      ring: 'r',
      identity: 'a',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      clock,
    });
    expect(() =>
      controllerSharding(m, { name: 'c', sharding: { shardable: true, primaryCache: 'owned' } }),
    ).toThrow("c: sharding primaryCache 'owned' needs a shardField");
    expect(() =>
      controllerSharding(m, { name: 'c', sharding: { shardable: true, shardField: 'object.metadata.uid' } }),
    ).toThrow("c: sharding shardField 'object.metadata.uid' needs a shardKey returning the key's uid");
    expect(
      controllerSharding(m, {
        name: 'c',
        sharding: { shardable: true, shardField: 'object.metadata.namespace' },
      }).primaryShard,
    ).toBeUndefined();
  });
});
