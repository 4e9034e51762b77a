import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../api/index.js';
import { Resources } from '../client/types.js';
import { FakeClock } from '../clock/index.js';
import { nopLogger } from '../log/index.js';
import { newRegistry } from '../metrics/index.js';
import { FakeListWatch, listOf } from './fake-list-watch.js';
import type { SharedInformerOptions } from './shared-informer.js';
import { DefaultSharedIndexInformer } from './shared-informer.js';
import { cm, RecordingHandler, until } from './test-helpers.js';
import { DeletedFinalStateUnknown } from './types.js';

function setup(items: KubeObject[], opts: Partial<SharedInformerOptions<KubeObject>> = {}) {
  const clock = new FakeClock();
  const lw = new FakeListWatch();
  lw.onList(listOf(items, '10'));
  const registry = newRegistry();
  const informer = new DefaultSharedIndexInformer(Resources.configmaps, lw, {
    clock,
    registry,
    logger: nopLogger(),
    reflector: { useWatchList: false, random: () => 0 },
    ...opts,
  });
  const ac = new AbortController();
  const start = () => informer.run(ac.signal);
  return { clock, lw, informer, ac, start, registry };
}

describe('DefaultSharedIndexInformer', () => {
  it('delivers the initial list as adds flagged isInInitialList, stripped of managedFields, with apiVersion/kind', async () => {
    const raw = cm('a', '1', { managedFields: [{ manager: 'kubectl' }] });
    delete raw.apiVersion;
    delete raw.kind;
    const { informer, lw, ac, start } = setup([raw, cm('b', '2')]);
    const h = new RecordingHandler();
    const reg = informer.addEventHandler(h);
    expect(informer.hasSynced()).toBe(false);
    const done = start();
    await until(() => lw.streams.length === 1, 'watch');
    expect(informer.hasSynced()).toBe(true);
    await informer.whenHandlersIdle();
    expect(h.calls).toEqual(['add ns1/a@1 initial', 'add ns1/b@2 initial']);
    expect(reg.hasSynced()).toBe(true);
    expect(informer.getIndexer().get('ns1/a')).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { namespace: 'ns1', name: 'a', resourceVersion: '1' },
    });
    expect(informer.lastSyncResourceVersion()).toBe('10');
    ac.abort();
    await done;
  });

  it('gives (old, new) on update and the final object on delete', async () => {
    const { informer, lw, ac, start } = setup([cm('a', '1')]);
    const seen: string[] = [];
    informer.addEventHandler({
      onUpdate: (o, n) => seen.push(`update ${o.metadata.resourceVersion}->${n.metadata.resourceVersion}`),
      onDelete: (o) =>
        seen.push(
          o instanceof DeletedFinalStateUnknown ? 'tombstone' : `delete ${o.metadata.resourceVersion}`,
        ),
    });
    const done = start();
    await until(() => lw.streams.length === 1, 'watch');
    lw.current.push('MODIFIED', cm('a', '11')).push('ADDED', cm('b', '12')).push('DELETED', cm('a', '13'));
    await until(() => seen.length === 2, 'events');
    await informer.whenHandlersIdle();
    expect(seen).toEqual(['update 1->11', 'delete 13']);
    expect(informer.getIndexer().listKeys()).toEqual(['ns1/b']);
    ac.abort();
    await done;
  });

  it('turns objects that vanished across a 410 relist into DeletedFinalStateUnknown tombstones', async () => {
    const { informer, lw, ac, start, clock, registry } = setup([cm('a', '1'), cm('b', '2'), cm('c', '3')]);
    lw.onList(listOf([cm('a', '1'), cm('c', '40'), cm('d', '41')], '50'));
    const h = new RecordingHandler();
    informer.addEventHandler(h);
    const tombstones: DeletedFinalStateUnknown[] = [];
    informer.addEventHandler({
      onDelete: (o) => void (o instanceof DeletedFinalStateUnknown && tombstones.push(o)),
    });
    const done = start();
    await until(() => lw.streams.length === 1, 'watch');
    lw.current.errorEvent(410, 'Expired', 'too old resource version');
    await until(() => informer.stats().errors === 1, 'backoff');
    clock.advance(800);
    await until(() => lw.streams.length === 2, 'relist');
    await informer.whenHandlersIdle();
    expect(h.calls).toEqual([
      'add ns1/a@1 initial',
      'add ns1/b@2 initial',
      'add ns1/c@3 initial',
      'update ns1/c@3->40',
      'add ns1/d@41',
      'delete ns1/b tombstone@2',
    ]);
    expect(tombstones[0].key).toBe('ns1/b');
    expect(tombstones[0].obj.metadata.name).toBe('b');
    expect(await registry.getSingleMetric('informer_watch_errors_total')!.get()).toMatchObject({
      values: [{ value: 1, labels: { resource: 'configmaps' } }],
    });
    ac.abort();
    await done;
  });

  it('keeps delivering to every handler when one throws, and counts the throws', async () => {
    const { informer, lw, ac, start, registry } = setup([cm('a', '1')]);
    let thrown = 0;
    informer.addEventHandler({
      onAdd: () => {
        thrown++;
        throw new Error('handler bug');
      },
      onUpdate: () => {
        thrown++;
        return Promise.reject(new Error('async handler bug'));
      },
    });
    const h = new RecordingHandler();
    informer.addEventHandler(h);
    const done = start();
    await until(() => lw.streams.length === 1, 'watch');
    lw.current.push('ADDED', cm('b', '11')).push('MODIFIED', cm('b', '12'));
    await until(() => h.calls.length === 3, 'events');
    await informer.whenHandlersIdle();
    expect(thrown).toBe(3);
    expect(h.calls).toEqual(['add ns1/a@1 initial', 'add ns1/b@11', 'update ns1/b@11->12']);
    expect(await registry.getSingleMetric('informer_handler_errors_total')!.get()).toMatchObject({
      values: [{ value: 3, labels: { resource: 'configmaps' } }],
    });
    ac.abort();
    await done;
  });

  it('replays the store to a handler added while running, in chunks, then continues live', async () => {
    const items = Array.from({ length: 250 }, (_, i) => cm(`o${i}`, String(i + 1)));
    const { informer, lw, ac, start } = setup(items, { chunkSize: 100 });
    const done = start();
    await until(() => lw.streams.length === 1, 'watch');
    const h = new RecordingHandler();
    const reg = informer.addEventHandler(h);
    expect(reg.hasSynced()).toBe(false);
    await new Promise((r) => setImmediate(r));
    // The first chunk went out in one turn; the rest waits for later turns.
    expect(h.calls.length).toBe(100);
    lw.current.push('MODIFIED', cm('o0', '300'));
    await until(() => reg.hasSynced(), 'replay');
    await informer.whenHandlersIdle();
    expect(h.calls.length).toBe(251);
    expect(h.calls[0]).toBe('add ns1/o0@1 initial');
    expect(h.calls[249]).toBe('add ns1/o249@250 initial');
    expect(h.calls[250]).toBe('update ns1/o0@1->300');
    ac.abort();
    await done;
  });

  it('re-delivers cached objects as updates with old === new every resync period of a handler', async () => {
    const { informer, lw, ac, start, clock } = setup([cm('a', '1'), cm('b', '2')]);
    const pairs: boolean[] = [];
    informer.addEventHandler({ onUpdate: (o, n) => pairs.push(o === n) }, 60_000);
    const other = new RecordingHandler();
    informer.addEventHandler(other);
    const done = start();
    await until(() => lw.streams.length === 1, 'watch');
    await informer.whenHandlersIdle();
    clock.advance(59_999);
    await informer.whenHandlersIdle();
    expect(pairs).toEqual([]);
    clock.advance(1);
    await until(() => pairs.length === 2, 'resync');
    expect(pairs).toEqual([true, true]);
    expect(other.calls).toEqual(['add ns1/a@1 initial', 'add ns1/b@2 initial']);
    clock.advance(60_000);
    await until(() => pairs.length === 4, 'second resync');
    ac.abort();
    await done;
  });

  it('applies a named custom transform and is usable without run()', () => {
    const { informer } = setup([], {
      transform: {
        name: 'drop-labels',
        fn: (o) => ({ ...o, metadata: { ...o.metadata, labels: undefined } }),
      },
    });
    informer.getIndexer().add(cm('x', '1', { labels: { a: 'b' } }));
    expect(informer.getIndexer().get('ns1/x')?.metadata.labels).toEqual({ a: 'b' }); // direct writes are not transformed
    expect(informer.hasSynced()).toBe(false);
    expect(informer.getIndexer().byIndex('namespace', 'ns1').length).toBe(1);
  });

  it('flags every initial add isInInitialList, even when the initial list overflows the ring', async () => {
    const items = Array.from({ length: 1500 }, (_, i) => cm(`o${i}`, String(i + 1)));
    const { informer, lw, ac, start } = setup(items); // ring of 1024
    const flags = new Map<boolean, number>();
    informer.addEventHandler({
      onAdd: (_o, initial) => void flags.set(initial, (flags.get(initial) ?? 0) + 1),
    });
    const done = start();
    await until(() => lw.streams.length === 1, 'watch');
    await informer.whenHandlersIdle();
    expect(Object.fromEntries(flags)).toEqual({ true: 1500 });
    ac.abort();
    await done;
  });

  it('applies a large relist in chunks, letting other work run in between', async () => {
    const items = Array.from({ length: 5000 }, (_, i) => cm(`o${i}`, String(i + 1)));
    const { informer, lw, ac, start } = setup(items, { relistChunkSize: 1000 });
    const seen: number[] = [];
    // Another task (a lease renewal, a probe) queued as the list arrives: it must not wait
    // for the whole list to be applied.
    const origList = lw.list.bind(lw);
    lw.list = async (opts) => {
      const page = await origList(opts);
      const probe = () => {
        seen.push(informer.getIndexer().listKeys().length);
        if (!informer.hasSynced()) setImmediate(probe);
      };
      setImmediate(probe);
      return page;
    };
    const done = start();
    await until(() => informer.hasSynced(), 'synced');
    expect(informer.getIndexer().listKeys().length).toBe(5000);
    // The probe ran while the store was partly filled.
    expect(seen.some((n) => n > 0 && n < 5000)).toBe(true);
    ac.abort();
    await done;
  });
});
