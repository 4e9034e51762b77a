import { describe, expect, it } from '@jest/globals';
import type { KubeList, KubeObject } from '../api/index.js';
import type { ListOptions } from '../client/types.js';
import { FakeClock } from '../clock/index.js';
import type { Logger } from '../log/index.js';
import { FakeListWatch, listOf } from './fake-list-watch.js';
import type { ReflectorSink } from './reflector.js';
import { Reflector } from './reflector.js';
import { cm, until } from './test-helpers.js';
import type { InformerShard, ShardFilter } from './types.js';

class RecordingSink implements ReflectorSink {
  readonly log: string[] = [];
  replace(objs: KubeObject[], rv: string): void {
    this.log.push(`replace ${objs.map((o) => o.metadata.name).join(',')} @${rv}`);
  }
  event(type: string, obj: KubeObject): void {
    this.log.push(`${type} ${obj.metadata.name}@${obj.metadata.resourceVersion}`);
  }
}

/** A shard by namespace set, standing in for KEP-5866 ranges; `move` changes it and tells the reflector. */
function namespaceShard(initial: string[]) {
  const filterOf = (nss: string[]): ShardFilter => ({
    selector: `ns(${nss.join(',')})`,
    admits: (o) => nss.includes(o.metadata.namespace ?? ''),
  });
  let current = filterOf(initial);
  const listeners = new Set<() => void>();
  const listed: (string | undefined)[] = [];
  const shard: InformerShard = {
    name: 'test',
    current: () => current,
    subscribe: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    listed: (applied) => listed.push(applied?.selector),
  };
  const move = (nss: string[]): void => {
    current = filterOf(nss);
    listeners.forEach((l) => l());
  };
  return { shard, move, listed, filterOf };
}

/** A KEP-5866 apiserver: lists only the selected objects, and echoes the selector. */
function serving(objs: KubeObject[], rv: string, filterOf: (nss: string[]) => ShardFilter) {
  return (opts: ListOptions): KubeList => {
    const nss = /^ns\((.*)\)$/.exec(opts.shardSelector ?? '')![1]!.split(',');
    const f = filterOf(nss);
    return {
      metadata: { resourceVersion: rv, shardInfo: { selector: opts.shardSelector } },
      items: objs.filter((o) => f.admits(o)),
    };
  };
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

const objs = [cm('a1', '1', {}, 'a'), cm('b1', '2', {}, 'b'), cm('c1', '3', {}, 'c')];

function setup(initial: string[], prime: (lw: FakeListWatch, s: ReturnType<typeof namespaceShard>) => void) {
  const clock = new FakeClock();
  const lw = new FakeListWatch();
  const s = namespaceShard(initial);
  prime(lw, s);
  const sink = new RecordingSink();
  const errors: string[] = [];
  const logs: string[] = [];
  const r = new Reflector(lw, sink, {
    name: 'configmaps',
    clock,
    logger: recordingLogger(logs),
    useWatchList: true, // a shard turns it off
    random: () => 0,
    onError: (err, phase) => errors.push(`${phase}: ${(err as Error).message}`),
    shard: s.shard,
  });
  const ac = new AbortController();
  const done = r.run(ac.signal);
  return { clock, lw, sink, r, ac, done, errors, logs, ...s };
}

describe('Reflector with a KEP-5866 shard', () => {
  it('on a server that ignores the selector (v1.35): stores everything, watches without it, keeps that through share changes', async () => {
    const t = setup(['a'], (lw) => lw.onList(listOf(objs, '10')));
    await until(() => t.lw.streams.length === 1, 'watch');
    expect(t.lw.listCalls).toEqual([{ shardSelector: 'ns(a)', limit: 500, continue: undefined }]);
    expect(t.sink.log).toEqual(['replace a1,b1,c1 @10']);
    expect(t.lw.watchCalls).toEqual([
      { allowWatchBookmarks: true, timeoutSeconds: 25, resourceVersion: '10' },
    ]);
    expect(t.listed).toEqual([undefined]);
    t.lw.current.push('ADDED', cm('c2', '11', {}, 'c'));
    await until(() => t.sink.log.length === 2, 'event');
    expect(t.sink.log[1]).toBe('ADDED c2@11');

    t.move(['b']); // the cache holds everything: no relist
    t.lw.current.push('ADDED', cm('a2', '12', {}, 'a'));
    await until(() => t.sink.log.length === 3, 'event');
    expect(t.lw.listCalls).toHaveLength(1);
    expect(t.lw.streams).toHaveLength(1);
    expect(t.errors).toEqual([]);
    expect(t.logs).toEqual([
      'v2 apiserver ignores shardSelector (KEP-5866): listing and watching everything, keys filtered on the client',
    ]);
    t.ac.abort();
    await t.done;
  });

  it('on a server that applies it: stores the share, watches with the same selector, drops events outside it', async () => {
    const t = setup(['a', 'c'], (lw, s) => {
      // A server that claims to apply it but sends b1 too is held to its claim.
      lw.onList(() => ({ ...serving(objs, '10', s.filterOf)({ shardSelector: 'ns(a,c)' }), items: objs }));
    });
    await until(() => t.lw.streams.length === 1, 'watch');
    expect(t.sink.log).toEqual(['replace a1,c1 @10']);
    expect(t.lw.watchCalls).toEqual([
      { shardSelector: 'ns(a,c)', allowWatchBookmarks: true, timeoutSeconds: 25, resourceVersion: '10' },
    ]);
    expect(t.listed).toEqual(['ns(a,c)']);
    // An apiserver of the old version behind the same address does not filter the watch.
    t.lw.current.push('ADDED', cm('b2', '11', {}, 'b')).push('ADDED', cm('a2', '12', {}, 'a'));
    await until(() => t.sink.log.length === 2, 'event');
    expect(t.sink.log[1]).toBe('ADDED a2@12');
    t.lw.current.end();
    await until(() => t.lw.streams.length === 2, 'rewatch');
    expect(t.lw.watchCalls[1]).toMatchObject({ shardSelector: 'ns(a,c)', resourceVersion: '12' });
    expect(t.logs).toEqual([
      'v2 apiserver applies shardSelector (KEP-5866): list and watch carry this replica’s share',
    ]);
    t.ac.abort();
    await t.done;
  });

  it('a new share ends the watch and lists again at once with the new selector (no error, no backoff)', async () => {
    const t = setup(['a'], (lw, s) =>
      lw.onList(serving(objs, '10', s.filterOf), serving(objs, '20', s.filterOf)),
    );
    await until(() => t.lw.streams.length === 1, 'watch');
    t.move(['a', 'b']);
    await until(() => t.lw.streams.length === 2, 'watch after relist');
    expect(t.lw.listCalls.map((c) => c.shardSelector)).toEqual(['ns(a)', 'ns(a,b)']);
    expect(t.lw.streams[0]!.ended).toBe(true);
    expect(t.sink.log).toEqual(['replace a1 @10', 'replace a1,b1 @20']);
    expect(t.lw.watchCalls[1]).toMatchObject({ shardSelector: 'ns(a,b)', resourceVersion: '20' });
    expect(t.listed).toEqual(['ns(a)', 'ns(a,b)']);
    expect(t.errors).toEqual([]);
    expect(t.r.stats.shardRelists).toBe(1); // and the fake clock never moved: no backoff
    t.ac.abort();
    await t.done;
  });

  it('a share that changes while the list runs is listed before any watch starts', async () => {
    let moved = false;
    const t = setup(['a'], (lw, s) =>
      lw.onList(
        (opts) => {
          if (!moved) {
            moved = true;
            s.move(['c']);
          }
          return serving(objs, '10', s.filterOf)(opts);
        },
        serving(objs, '11', s.filterOf),
      ),
    );
    await until(() => t.lw.streams.length === 1, 'watch');
    expect(t.lw.listCalls.map((c) => c.shardSelector)).toEqual(['ns(a)', 'ns(c)']);
    expect(t.lw.watchCalls).toEqual([
      { shardSelector: 'ns(c)', allowWatchBookmarks: true, timeoutSeconds: 25, resourceVersion: '11' },
    ]);
    expect(t.sink.log).toEqual(['replace a1 @10', 'replace c1 @11']);
    t.ac.abort();
    await t.done;
  });

  it('fails a list whose pages disagree about the selector, and retries it', async () => {
    const t = setup(['a'], (lw, s) =>
      lw.onList(
        {
          ...serving(objs, '10', s.filterOf)({ shardSelector: 'ns(a)' }),
          metadata: { resourceVersion: '10', continue: 'p2', shardInfo: { selector: 'ns(a)' } },
        },
        listOf([cm('b1', '2', {}, 'b')], '10'),
        serving(objs, '12', s.filterOf),
      ),
    );
    await until(() => t.errors.length === 1, 'list error');
    expect(t.errors).toEqual([
      'list: the apiserver applied the shardSelector to some pages of the list only',
    ]);
    expect(t.sink.log).toEqual([]);
    t.clock.advance(1_000);
    await until(() => t.lw.streams.length === 1, 'watch');
    expect(t.sink.log).toEqual(['replace a1 @12']);
    t.ac.abort();
    await t.done;
  });
});
