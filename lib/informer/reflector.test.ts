import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../api/index.js';
import { ApiError } from '../client/errors.js';
import { isConnectionSuspect } from '../client/h2.js';
import { FakeClock } from '../clock/index.js';
import { nopLogger } from '../log/index.js';
import { Backoff } from './backoff.js';
import { FakeListWatch, goneError, listOf } from './fake-list-watch.js';
import type { ReflectorOptions, ReflectorSink } from './reflector.js';
import { INITIAL_EVENTS_END_ANNOTATION, Reflector, WatchInactiveError } from './reflector.js';
import { cm, until } from './test-helpers.js';

class RecordingSink implements ReflectorSink {
  readonly log: string[] = [];
  replace(objs: KubeObject[], rv: string): void {
    this.log.push(`replace ${objs.map((o) => o.metadata.name).join(',')} @${rv}`);
  }
  event(type: string, obj: KubeObject): void {
    this.log.push(`${type} ${obj.metadata.name}@${obj.metadata.resourceVersion}`);
  }
}

/** `prime` queues LIST answers / WATCH failures before the reflector starts. */
function setup(opts: Partial<ReflectorOptions> = {}, prime: (lw: FakeListWatch) => void = () => {}) {
  const clock = new FakeClock();
  const lw = new FakeListWatch();
  prime(lw);
  const sink = new RecordingSink();
  const errors: string[] = [];
  const r = new Reflector(lw, sink, {
    name: 'configmaps',
    clock,
    logger: nopLogger(),
    useWatchList: false,
    random: () => 0,
    onError: (err, phase) => errors.push(`${phase}: ${(err as Error).message}`),
    ...opts,
  });
  const ac = new AbortController();
  const done = r.run(ac.signal);
  return { clock, lw, sink, r, ac, done, errors };
}

describe('Reflector LIST + WATCH', () => {
  it('paginates the LIST by 500 following continue, then watches from the list RV with bookmarks', async () => {
    const { lw, sink, r, ac, done } = setup({ random: () => 0.5 }, (lw) => {
      lw.onList(
        listOf([cm('a', '1')], '10', 'c1'),
        listOf([cm('b', '2')], '11', 'c2'),
        listOf([cm('c', '3')], '12'),
      );
    });
    await until(() => lw.streams.length === 1, 'watch');
    expect(lw.listCalls).toEqual([
      { limit: 500, continue: undefined },
      { limit: 500, continue: 'c1' },
      { limit: 500, continue: 'c2' },
    ]);
    expect(sink.log).toEqual(['replace a,b,c @12']);
    expect(r.hasSynced()).toBe(true);
    expect(lw.watchCalls).toEqual([{ allowWatchBookmarks: true, timeoutSeconds: 27, resourceVersion: '12' }]);
    ac.abort();
    await done;
  });

  it('passes namespace and selectors to LIST and WATCH', async () => {
    const { lw, ac, done } = setup(
      { namespace: 'ns1', labelSelector: 'a=b', fieldSelector: 'metadata.name=x', metadataOnly: true },
      (lw) => {
        lw.onList(listOf([], '5'));
      },
    );
    await until(() => lw.streams.length === 1, 'watch');
    const sel = {
      namespace: 'ns1',
      labelSelector: 'a=b',
      fieldSelector: 'metadata.name=x',
      metadataOnly: true,
    };
    expect(lw.listCalls).toEqual([{ ...sel, limit: 500, continue: undefined }]);
    expect(lw.watchCalls).toEqual([
      { ...sel, allowWatchBookmarks: true, timeoutSeconds: 25, resourceVersion: '5' },
    ]);
    ac.abort();
    await done;
  });

  it('restarts the LIST from the top when a continue token expires (410) mid-way', async () => {
    const { lw, sink, ac, done, errors } = setup({}, (lw) => {
      lw.onList(
        listOf([cm('a', '1')], '10', 'c1'),
        goneError('list'),
        listOf([cm('a', '1')], '20', 'd1'),
        listOf([cm('b', '2')], '20'),
      );
    });
    await until(() => lw.streams.length === 1, 'watch');
    expect(lw.listCalls.map((c) => c.continue ?? '-')).toEqual(['-', 'c1', '-', 'd1']);
    expect(sink.log).toEqual(['replace a,b @20']);
    expect(errors).toEqual(['list: too old resource version']);
    ac.abort();
    await done;
  });

  it('tracks the RV of events and bookmarks and resumes from it when the server closes the watch', async () => {
    const { lw, sink, r, ac, done, clock } = setup({}, (lw) => {
      lw.onList(listOf([], '10'));
    });
    await until(() => lw.streams.length === 1, 'watch');
    lw.current.push('ADDED', cm('a', '11')).push('MODIFIED', cm('a', '12'));
    await until(() => r.lastSyncResourceVersion() === '12', 'rv 12');
    lw.current.bookmark('30');
    await until(() => r.lastSyncResourceVersion() === '30', 'bookmark rv');
    clock.advance(20_000); // a normal watch, ended by the server at its timeoutSeconds
    lw.current.end();
    await until(() => lw.streams.length === 2, 'second watch');
    expect(lw.watchCalls[1].resourceVersion).toBe('30');
    lw.current.push('DELETED', cm('a', '31'));
    await until(() => sink.log.length === 4, 'delete');
    expect(sink.log).toEqual(['replace  @10', 'ADDED a@11', 'MODIFIED a@12', 'DELETED a@31']);
    expect(lw.listCalls.length).toBe(1);
    ac.abort();
    await done;
  });

  it('warns once for the same LIST failure repeated (a CRD not installed), not once per retry', async () => {
    const warnings: string[] = [];
    const logger = { ...nopLogger(), warn: (msg: string) => void warnings.push(msg) };
    logger.child = () => logger;
    const notFound = () =>
      new ApiError({
        code: 404,
        message: 'the server could not find the requested resource',
        verb: 'list',
        resource: 'x',
      });
    const { lw, ac, done, clock, errors } = setup({ logger }, (lw) => {
      lw.onList(notFound(), notFound(), notFound(), listOf([], '5'), notFound());
    });
    await until(() => errors.length === 1, 'first error');
    clock.advance(800);
    await until(() => errors.length === 2, 'second error');
    clock.advance(1600);
    await until(() => errors.length === 3, 'third error');
    expect(warnings).toEqual(['list/watch failed']);
    clock.advance(3200);
    await until(() => lw.streams.length === 1, 'watch');
    ac.abort();
    await done;
  });

  it('relists after a watch ERROR event with code 410, after backoff', async () => {
    const { lw, sink, ac, done, clock, errors, r } = setup({}, (lw) => {
      lw.onList(listOf([cm('a', '1'), cm('b', '2')], '10'), listOf([cm('a', '1')], '50'));
    });
    await until(() => lw.streams.length === 1, 'watch');
    lw.current.errorEvent(410, 'Expired', 'too old resource version: 10 (40)');
    await until(() => errors.length === 1, 'error');
    expect(errors).toEqual(['watch: too old resource version: 10 (40)']);
    expect(lw.listCalls.length).toBe(1);
    clock.advance(799);
    await until(() => clock.pendingTimers() > 0, 'sleep');
    expect(lw.listCalls.length).toBe(1);
    clock.advance(1);
    await until(() => lw.streams.length === 2, 'watch after relist');
    expect(sink.log).toEqual(['replace a,b @10', 'replace a @50']);
    expect(lw.watchCalls[1].resourceVersion).toBe('50');
    expect(r.stats.relists).toBe(1);
    ac.abort();
    await done;
  });

  it('relists when the WATCH request itself answers 410, and re-watches from the last RV on other errors', async () => {
    const { lw, ac, done, clock, errors } = setup({}, (lw) => {
      lw.onList(listOf([], '10'), listOf([], '60'));
      lw.failNextWatch(new ApiError({ code: 500, message: 'boom', verb: 'watch', resource: 'configmaps' }));
      lw.failNextWatch(goneError());
    });
    await until(() => errors.length === 1, 'first error');
    clock.advance(800);
    await until(() => errors.length === 2, 'second error');
    expect(lw.watchCalls.map((c) => c.resourceVersion)).toEqual(['10', '10']);
    clock.advance(1600);
    await until(() => lw.streams.length === 1, 'watch');
    expect(lw.listCalls.length).toBe(2);
    expect(lw.watchCalls.map((c) => c.resourceVersion)).toEqual(['10', '10', '60']);
    expect(errors).toEqual(['watch: boom', 'watch: too old resource version']);
    ac.abort();
    await done;
  });

  it('backs off 800 ms doubling to a 30 s cap, and never gives up', async () => {
    const fail = new ApiError({ code: 503, message: 'unavailable', verb: 'list', resource: 'configmaps' });
    const { lw, ac, done, clock, errors } = setup({}, (lw) => {
      for (let i = 0; i < 10; i++) lw.onList(fail);
      lw.onList(listOf([], '1'));
    });
    const waits: number[] = [];
    for (let i = 0; i < 10; i++) {
      await until(() => errors.length === i + 1, `error ${i + 1}`);
      // Find the delay by stepping 100 ms at a time until the next LIST goes out.
      let waited = 0;
      while (lw.listCalls.length === i + 1) {
        clock.advance(100);
        waited += 100;
        await until(() => true);
        await new Promise((r) => setImmediate(r));
      }
      waits.push(waited);
    }
    expect(waits).toEqual([800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000, 30000]);
    await until(() => lw.streams.length === 1, 'watch at last');
    ac.abort();
    await done;
  });

  it('aborts a silent watch after the inactivity window and re-watches from the same RV', async () => {
    const opts = { minWatchTimeoutSeconds: 600, maxWatchTimeoutSeconds: 600 };
    const { lw, ac, done, clock, errors } = setup(opts, (lw) => {
      lw.onList(listOf([], '10'));
    });
    await until(() => lw.streams.length === 1, 'watch');
    clock.advance(100_000);
    lw.current.bookmark('15'); // activity: the guard restarts its window
    await until(() => true);
    await new Promise((r) => setImmediate(r));
    clock.advance(120_000);
    expect(lw.current.ended).toBe(false);
    // Checked every 30 s, so a silent watch is dropped between 150 and 180 s after its last event.
    clock.advance(60_000);
    await until(() => errors.length === 1, 'inactivity error');
    expect(errors).toEqual(['watch: no watch event or bookmark for 150s']);
    expect(lw.streams[0].ended).toBe(true);
    await until(() => lw.streams.length === 2, 're-watch at once, no backoff');
    expect(lw.watchCalls[1].resourceVersion).toBe('15');
    ac.abort();
    await done;
  });

  it('drops a watch the server keeps open 5 s past its timeoutSeconds (half-open) within 45 s of a stall', async () => {
    const { lw, ac, done, clock, errors } = setup({}, (lw) => {
      lw.onList(listOf([], '10'));
    });
    await until(() => lw.streams.length === 1, 'watch');
    expect(lw.watchCalls[0].timeoutSeconds).toBe(25);
    lw.current.bookmark('12'); // events flow, then the link goes silent without FIN or RST
    await until(() => true);
    clock.advance(29_000);
    await until(() => true);
    expect(lw.current.ended).toBe(false);
    expect(errors).toEqual([]);
    clock.advance(1_000);
    await until(() => errors.length === 1, 'deadline error');
    expect(errors[0]).toMatch(/^watch: watch still open 5s after it should have ended/);
    expect(lw.streams[0].ended).toBe(true);
    // The abort reason tells the transport to suspect the connection (lib/client/h2.ts).
    expect(isConnectionSuspect(lw.streams[0].signal.reason)).toBe(true);
    expect(isConnectionSuspect(new WatchInactiveError(150_000))).toBe(true);
    await until(() => lw.streams.length === 2, 're-watch at once, no backoff');
    expect(lw.watchCalls[1].resourceVersion).toBe('12');
    expect(lw.listCalls.length).toBe(1); // no relist: the RV is still good
    ac.abort();
    await done;
  });

  it('re-watches at once after a silence drop even when earlier failures raised the backoff', async () => {
    const { lw, ac, done, clock, errors } = setup({}, (lw) => {
      lw.onList(listOf([], '10'));
      for (let i = 0; i < 4; i++) lw.failNextWatch(new Error('connection reset'));
    });
    for (const wait of [800, 1600, 3200, 6400]) {
      await until(() => errors.length > 0 && clock.pendingTimers() > 0, 'backing off');
      clock.advance(wait);
    }
    await until(() => lw.streams.length === 1, 'watch after four failures');
    clock.advance(30_000); // deadline: 25 s + 5 s
    await until(() => lw.streams.length === 2, 're-watch without the 12.8 s backoff step');
    expect(errors.at(-1)).toMatch(/watch still open/);
    ac.abort();
    await done;
  });

  it('re-watches from the last RV (no relist) after a non-410 ERROR event', async () => {
    const { lw, ac, done, clock, errors } = setup({}, (lw) => lw.onList(listOf([], '10')));
    await until(() => lw.streams.length === 1, 'watch');
    lw.current.push('ADDED', cm('a', '11')).errorEvent(500, 'InternalError', 'etcd hiccup');
    await until(() => errors.length === 1, 'error');
    expect(errors).toEqual(['watch: etcd hiccup']);
    clock.advance(800);
    await until(() => lw.streams.length === 2, 're-watch');
    expect(lw.watchCalls[1].resourceVersion).toBe('11');
    expect(lw.listCalls.length).toBe(1);
    ac.abort();
    await done;
  });

  it('backs off instead of spinning when the server closes every watch at once', async () => {
    const { lw, ac, done, clock, errors } = setup({}, (lw) => lw.onList(listOf([], '10')));
    await until(() => lw.streams.length === 1, 'watch');
    lw.current.end();
    await until(() => errors.length === 1, 'error');
    expect(errors).toEqual(['watch: watch closed immediately without any event']);
    expect(lw.streams.length).toBe(1);
    clock.advance(800);
    await until(() => lw.streams.length === 2, 're-watch');
    ac.abort();
    await done;
  });

  it('stops quietly when the signal aborts mid-watch', async () => {
    const { lw, ac, done, errors } = setup({}, (lw) => {
      lw.onList(listOf([], '10'));
    });
    await until(() => lw.streams.length === 1, 'watch');
    ac.abort();
    await done;
    expect(lw.streams[0].ended).toBe(true);
    expect(errors).toEqual([]);
  });
});

describe('Reflector WatchList', () => {
  const end = { [INITIAL_EVENTS_END_ANNOTATION]: 'true' };

  it('builds the initial state from the stream and applies it at the initial-events-end bookmark', async () => {
    const { lw, sink, r, ac, done } = setup({ useWatchList: true });
    await until(() => lw.streams.length === 1, 'watch list');
    expect(lw.watchCalls[0]).toEqual({
      allowWatchBookmarks: true,
      timeoutSeconds: 25,
      sendInitialEvents: true,
      resourceVersionMatch: 'NotOlderThan',
    });
    lw.current.push('ADDED', cm('a', '5')).push('ADDED', cm('b', '6')).bookmark('7');
    await until(() => r.lastSyncResourceVersion() === '7', 'plain bookmark');
    expect(r.hasSynced()).toBe(false);
    lw.current.bookmark('8', end).push('MODIFIED', cm('a', '9'));
    await until(() => sink.log.length === 2, 'initial state then event');
    expect(sink.log).toEqual(['replace a,b @8', 'MODIFIED a@9']);
    expect(r.hasSynced()).toBe(true);
    expect(lw.listCalls).toEqual([]);
    ac.abort();
    await done;
  });

  it('falls back to LIST for good when the server rejects the watch list', async () => {
    const { lw, sink, r, ac, done, clock, errors } = setup({ useWatchList: true }, (lw) => {
      lw.failNextWatch(
        new ApiError({
          code: 422,
          message: 'sendInitialEvents is forbidden',
          verb: 'watch',
          resource: 'configmaps',
        }),
      );
      lw.onList(listOf([cm('a', '1')], '10'), listOf([cm('a', '1')], '20'));
    });
    await until(() => lw.streams.length === 1, 'watch after list');
    expect(errors).toEqual(['watchlist: sendInitialEvents is forbidden']);
    expect(r.usingWatchList()).toBe(false);
    expect(lw.watchCalls[1]).toEqual({
      allowWatchBookmarks: true,
      timeoutSeconds: 25,
      resourceVersion: '10',
    });
    // A later relist uses LIST again, not the watch list.
    lw.current.errorEvent(410, 'Expired', 'too old');
    await until(() => errors.length === 2, '410');
    clock.advance(800);
    await until(() => lw.streams.length === 2, 'watch after relist');
    expect(lw.listCalls.length).toBe(2);
    expect(lw.watchCalls.filter((c) => c.sendInitialEvents).length).toBe(1);
    expect(sink.log).toEqual(['replace a @10', 'replace a @20']);
    ac.abort();
    await done;
  });

  it('retries the watch list after transport errors, and gives up for LIST after the third', async () => {
    const refused = new Error('connect ECONNREFUSED 127.0.0.1:6443');
    const { lw, ac, done, clock, errors, r } = setup({ useWatchList: true }, (lw) => {
      lw.failNextWatch(refused).failNextWatch(refused).failNextWatch(refused);
      lw.onList(listOf([], '10'));
    });
    await until(() => errors.length === 1, 'first failure');
    clock.advance(800);
    await until(() => errors.length === 2, 'second failure');
    expect(r.usingWatchList()).toBe(true);
    expect(lw.listCalls.length).toBe(0);
    clock.advance(1600);
    await until(() => lw.streams.length === 1, 'watch after LIST');
    expect(r.usingWatchList()).toBe(false);
    expect(
      lw.watchCalls.map((c) => (c.sendInitialEvents ? 'watchlist' : `watch@${c.resourceVersion}`)),
    ).toEqual(['watchlist', 'watchlist', 'watchlist', 'watch@10']);
    ac.abort();
    await done;
  });

  it('falls back to LIST when the stream ends before the initial-events-end bookmark', async () => {
    const { lw, sink, ac, done, clock } = setup({ useWatchList: true }, (lw) =>
      lw.onList(listOf([cm('a', '5')], '10')),
    );
    await until(() => lw.streams.length === 1, 'watch list');
    clock.advance(5000);
    lw.current.push('ADDED', cm('a', '5'));
    lw.current.end();
    await until(() => lw.streams.length === 2, 'watch after list');
    expect(lw.listCalls.length).toBe(1);
    expect(sink.log).toEqual(['replace a @10']);
    ac.abort();
    await done;
  });
});

describe('Backoff', () => {
  it('doubles from 800 ms to 30 s, jitters upwards by at most 10%, and resets after 2 calm minutes', () => {
    const clock = new FakeClock();
    let rnd = 0;
    const b = new Backoff(clock, { random: () => rnd });
    expect([b.next(), b.next(), b.next()]).toEqual([800, 1600, 3200]);
    rnd = 0.999999;
    const jittered = b.next();
    expect(jittered).toBeGreaterThan(6400);
    expect(jittered).toBeLessThan(6400 * 1.1);
    rnd = 0;
    for (let i = 0; i < 10; i++) b.next();
    expect(b.next()).toBe(30_000);
    clock.advance(120_000);
    expect(b.next()).toBe(30_000); // exactly 2 min is not yet "calm"
    clock.advance(120_001);
    expect(b.next()).toBe(800);
  });
});
