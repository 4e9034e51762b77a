import { describe, expect, it } from '@jest/globals';
import { ApiError } from '../client/errors.js';
import { FakeKubeClient } from '../client/fake.js';
import { Resources } from '../client/types.js';
import { FakeClock } from '../clock/index.js';
import type { Logger, LogMeta } from '../log/index.js';
import { DefaultSharedInformerFactory } from './factory.js';
import { cm, RecordingHandler, turn, until } from './test-helpers.js';
import type { InformerShard } from './types.js';

class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  error = (msg: string, meta?: LogMeta) => this.lines.push(`error ${msg} ${JSON.stringify(meta ?? {})}`);
  warn = (msg: string, meta?: LogMeta) => this.lines.push(`warn ${msg} ${JSON.stringify(meta ?? {})}`);
  info = (msg: string, meta?: LogMeta) => this.lines.push(`info ${msg} ${JSON.stringify(meta ?? {})}`);
  debug = () => {};
  child = () => this;
  v = () => this;
}

describe('DefaultSharedInformerFactory', () => {
  it('shares one informer per resource, namespace, selectors, transform and metadataOnly', () => {
    const f = new DefaultSharedInformerFactory(new FakeKubeClient(), { clock: new FakeClock() });
    const a = f.informerFor(Resources.configmaps);
    expect(f.informerFor(Resources.configmaps)).toBe(a);
    expect(f.informerFor(Resources.configmaps, { namespace: 'x' })).not.toBe(a);
    expect(f.informerFor(Resources.configmaps, { labelSelector: 'a=b' })).not.toBe(a);
    expect(f.informerFor(Resources.configmaps, { metadataOnly: true })).not.toBe(a);
    expect(
      f.informerFor(Resources.configmaps, { transform: { name: 'strip-managed-fields', fn: (o) => o } }),
    ).toBe(a);
    expect(f.informerFor(Resources.configmaps, { transform: { name: 'other', fn: (o) => o } })).not.toBe(a);
    expect(f.informerFor(Resources.pods)).not.toBe(a);
    expect(f.all().length).toBe(6);
  });

  it('keeps a sharded informer (KEP-5866) apart from the full one, one InformerShard per shard name', () => {
    const f = new DefaultSharedInformerFactory(new FakeKubeClient(), { clock: new FakeClock() });
    const shard = (name: string): InformerShard => ({
      name,
      current: () => ({ selector: 's', admits: () => true }),
      subscribe: () => () => undefined,
      listed: () => undefined,
    });
    const full = f.informerFor(Resources.configmaps);
    const mine = shard('sharding/c');
    const sharded = f.informerFor(Resources.configmaps, { shard: mine });
    expect(sharded).not.toBe(full);
    expect(f.informerFor(Resources.configmaps, { shard: mine })).toBe(sharded);
    expect(f.informerFor(Resources.configmaps, { shard: shard('sharding/d') })).not.toBe(sharded);
    expect(() => f.informerFor(Resources.configmaps, { shard: shard('sharding/c') })).toThrow(
      'informer shard "sharding/c" is already bound to another InformerShard',
    );
  });

  it('works without start: tests prime the cache directly', () => {
    const f = new DefaultSharedInformerFactory(new FakeKubeClient(), { clock: new FakeClock() });
    f.informerFor(Resources.configmaps).getIndexer().add(cm('a', '1'));
    expect(f.informerFor(Resources.configmaps).getIndexer().get('ns1/a')?.metadata.name).toBe('a');
  });

  it('starts every informer, including ones created after start, and waits for their caches', async () => {
    const client = new FakeKubeClient([
      cm('a', '1'),
      { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'ns1', name: 'p' } },
    ]);
    const logger = new MemoryLogger();
    const f = new DefaultSharedInformerFactory(client, { clock: new FakeClock(), logger });
    const cms = f.informerFor(Resources.configmaps);
    const h = new RecordingHandler();
    const reg = cms.addEventHandler(h);
    const ac = new AbortController();
    f.start(ac.signal);
    const pods = f.informerFor(Resources.pods);
    expect(await f.waitForCacheSync(ac.signal)).toBe(true);
    expect(cms.hasSynced() && pods.hasSynced()).toBe(true);
    expect(pods.getIndexer().listKeys()).toEqual(['ns1/p']);
    await until(() => reg.hasSynced(), 'handler synced');
    await client.resource(Resources.configmaps).create(cm('b', ''));
    await until(() => h.calls.length === 2, 'watch event');
    expect(h.calls[0]).toBe('add ns1/a@1 initial');
    expect(h.calls[1]).toMatch(/^add ns1\/b@\d+$/);
    // The fake serves the watch list: no LIST was needed.
    expect(client.actions.filter((a) => a.verb === 'list')).toEqual([]);
    expect(logger.lines).toContain('info informer caches synced {"informers":2}');
    ac.abort();
  });

  it('logs which informers are still unsynced and answers false when the signal aborts first', async () => {
    const client = new FakeKubeClient([cm('a', '1')]);
    client.prependReactor('*', 'pods', () => {
      throw new ApiError({ code: 403, message: 'pods is forbidden', verb: 'list', resource: 'pods' });
    });
    const clock = new FakeClock();
    const logger = new MemoryLogger();
    const f = new DefaultSharedInformerFactory(client, { clock, logger });
    f.informerFor(Resources.configmaps);
    f.informerFor(Resources.pods);
    const ac = new AbortController();
    f.start(ac.signal);
    const waiting = f.waitForCacheSync(ac.signal);
    await until(() => f.informerFor(Resources.configmaps).hasSynced(), 'configmaps');
    clock.advance(5000);
    expect(logger.lines).toContain(
      'info waiting for informer caches to sync {"unsynced":["pods"],"synced":1,"waitedSeconds":5}',
    );
    ac.abort();
    expect(await waiting).toBe(false);
    expect(logger.lines).toContain('warn stopped waiting for informer caches {"unsynced":["pods"]}');
    expect(
      logger.lines.some((l) => l.startsWith('warn list/watch failed') && l.includes('pods is forbidden')),
    ).toBe(true);
  });

  it('resyncs every --min-resync-period × [1, 2): re-delivers each cached object as an update', async () => {
    const client = new FakeKubeClient([cm('a', '1')]);
    const clock = new FakeClock();
    const f = new DefaultSharedInformerFactory(client, {
      clock,
      minResyncPeriodMs: 12 * 3600_000,
      random: () => 0.5, // jitter factor 1.5: every 18 h
    });
    const h = new RecordingHandler();
    const reg = f.informerFor(Resources.configmaps).addEventHandler(h);
    const ac = new AbortController();
    f.start(ac.signal);
    expect(await f.waitForCacheSync(ac.signal)).toBe(true);
    await until(() => reg.hasSynced(), 'handler synced');
    expect(h.calls).toEqual(['add ns1/a@1 initial']);
    clock.advance(18 * 3600_000 - 1);
    for (let i = 0; i < 5; i++) await turn();
    expect(h.calls).toEqual(['add ns1/a@1 initial']);
    clock.advance(1);
    await until(() => h.calls.length === 2, 'resync');
    expect(h.calls[1]).toBe('update ns1/a@1->1');
    // And again one period later: a key dropped after maxRetries keeps coming back.
    clock.advance(18 * 3600_000);
    await until(() => h.calls.length === 3, 'second resync');
    ac.abort();
  });

  it('does not resync without --min-resync-period', async () => {
    const client = new FakeKubeClient([cm('a', '1')]);
    const clock = new FakeClock();
    const f = new DefaultSharedInformerFactory(client, { clock });
    const h = new RecordingHandler();
    const reg = f.informerFor(Resources.configmaps).addEventHandler(h);
    const ac = new AbortController();
    f.start(ac.signal);
    await until(() => reg.hasSynced(), 'handler synced');
    clock.advance(48 * 3600_000);
    for (let i = 0; i < 5; i++) await turn();
    expect(h.calls).toEqual(['add ns1/a@1 initial']);
    ac.abort();
  });
});
