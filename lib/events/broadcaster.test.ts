import { describe, expect, it } from '@jest/globals';
import type { Event, KubeObject } from '../api/index.js';
import { ApiError, FakeKubeClient, Resources } from '../client/index.js';
import { FakeClock } from '../clock/index.js';
import { newRegistry } from '../metrics/index.js';
import { MemoryLogger } from '../log/index.js';
import { AGGREGATE_PREFIX, EventBroadcaster, FakeEventRecorder, type CoreEvent } from './index.js';

const pod: KubeObject = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-0', namespace: 'ns1', uid: 'u-1', resourceVersion: '42' },
};
const cidr: KubeObject = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'ServiceCIDR',
  metadata: { name: 'kubernetes', uid: 'u-2' },
};

function setup(opts: { maxQueued?: number } = {}) {
  const clock = new FakeClock();
  const fake = new FakeKubeClient([], { clock });
  const registry = newRegistry();
  const b = new EventBroadcaster({ client: fake, clock, registry, ...opts });
  const rec = b.newRecorder('service-cidr-controller', 'service-cidr-controller-host1');
  return { clock, fake, b, rec, registry };
}

async function storedEvents(fake: FakeKubeClient, namespace?: string): Promise<Event[]> {
  return (await fake.resource<Event>(Resources.events).list(namespace ? { namespace } : {})).items;
}

describe('EventBroadcaster', () => {
  it('creates an events.k8s.io/v1 Event in the object namespace', async () => {
    const t = setup();
    t.rec.event(pod, 'Warning', 'FailedResourceClaimCreation', 'Create', 'claim template missing');
    await t.b.idle();
    expect(t.fake.actions).toHaveLength(1);
    const a = t.fake.actions[0]!;
    expect([a.verb, a.resource, a.namespace]).toEqual(['create', 'events', 'ns1']);
    const body = a.body as Event;
    expect(body.metadata.name).toMatch(/^web-0\.[0-9a-f]+$/);
    expect(body).toEqual({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: body.metadata.name, namespace: 'ns1' },
      eventTime: '2026-01-01T00:00:00.000000Z',
      reportingController: 'service-cidr-controller',
      reportingInstance: 'service-cidr-controller-host1',
      action: 'Create',
      reason: 'FailedResourceClaimCreation',
      regarding: {
        apiVersion: 'v1',
        kind: 'Pod',
        namespace: 'ns1',
        name: 'web-0',
        uid: 'u-1',
        resourceVersion: '42',
      },
      note: 'claim template missing',
      type: 'Warning',
    });
  });

  it('puts events about cluster-scoped objects in the default namespace', async () => {
    const t = setup();
    t.rec.event(cidr, 'Warning', 'KubernetesServiceCIDRError', 'Validate', 'bad');
    await t.b.idle();
    expect(t.fake.actions[0]!.namespace).toBe('default');
    expect((await storedEvents(t.fake, 'default'))[0]!.regarding).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      name: 'kubernetes',
      uid: 'u-2',
    });
  });

  it('folds repeats into a series: count 2 at once, later counts batched every 30 s', async () => {
    const t = setup();
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'done');
    await t.b.idle();
    t.clock.advance(1_000);
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'done');
    await t.b.idle();
    t.clock.advance(1_000);
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'done');
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'done');
    await t.b.idle();
    const name = (t.fake.actions[0]!.body as Event).metadata.name;
    expect(t.fake.actions.map((a) => [a.verb, a.name ?? a.namespace, a.patchType, a.body])).toEqual([
      ['create', name, undefined, expect.anything()],
      ['patch', name, 'merge', { series: { count: 2, lastObservedTime: '2026-01-01T00:00:01.000000Z' } }],
    ]);
    t.fake.clearActions();
    t.clock.advance(28_000); // the flush timer was set by the create at t=0
    await new Promise((r) => setImmediate(r));
    await t.b.idle();
    await t.b.flush(); // let the timer's flush finish
    expect(t.fake.actions.map((a) => [a.verb, a.name, a.body])).toEqual([
      ['patch', name, { series: { count: 4, lastObservedTime: '2026-01-01T00:00:02.000000Z' } }],
    ]);
    const [stored] = await storedEvents(t.fake, 'ns1');
    expect(stored!.series).toEqual({ count: 4, lastObservedTime: '2026-01-01T00:00:02.000000Z' });
    expect(await storedEvents(t.fake)).toHaveLength(1);
  });

  it('starts a new Event once a series has been quiet for 6 minutes', async () => {
    const t = setup();
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'done');
    await t.b.idle();
    t.clock.advance(6 * 60_000);
    await t.b.flush();
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'done');
    await t.b.idle();
    expect(t.fake.actions.map((a) => a.verb)).toEqual(['create', 'create']);
  });

  it('keeps events with a different reason or type apart', async () => {
    const t = setup();
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'a');
    t.rec.event(pod, 'Warning', 'Synced', 'Sync', 'a');
    t.rec.event(pod, 'Normal', 'Other', 'Sync', 'a');
    t.rec.event(pod, 'Normal', 'Other', 'Resync', 'a');
    await t.b.idle();
    expect(t.fake.actions.map((a) => a.verb)).toEqual(['create', 'create', 'create', 'create']);
  });

  it('folds events that differ only in their note into one series, as client-go events/v1 does', async () => {
    const t = setup();
    t.rec.event(pod, 'Warning', 'FailedSync', 'Sync', 'attempt 1 failed');
    t.rec.event(pod, 'Warning', 'FailedSync', 'Sync', 'attempt 2 failed');
    await t.b.idle();
    expect(t.fake.actions.map((a) => a.verb)).toEqual(['create', 'patch']);
    const [stored] = await storedEvents(t.fake, 'ns1');
    expect(stored).toMatchObject({ note: 'attempt 1 failed', series: { count: 2 } });
  });

  it('never undercounts a series: a repeat recorded while a flush patch is in flight is counted', async () => {
    const t = setup();
    const repeat = () => t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'done');
    /** Runs every pending promise continuation (the fake client does no I/O). */
    const settle = () => new Promise((r) => setImmediate(r));
    const seriesCounts = () =>
      t.fake.actions.filter((a) => a.verb === 'patch').map((a) => (a.body as Event).series?.count);
    for (let i = 0; i < 3; i++) repeat();
    await t.b.idle(); // create, patch count 2; count 3 waits for the flush
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let held = false;
    t.fake.prependReactor('patch', 'events', async () => {
      if (held) return undefined;
      held = true;
      await gate;
      return undefined;
    });
    t.clock.advance(30_000); // the flush timer fires; its patch (count 3) hangs
    await settle();
    expect(held).toBe(true);
    repeat(); // count 4, recorded while that patch is in flight
    await settle();
    release();
    // Let the held patch land and its answer be taken in before anything else writes: a flush
    // outside the single writer would now hold count 3 again and write it back.
    await settle();
    await t.b.idle();
    await t.b.flush();
    expect(seriesCounts()).toEqual([2, 3, 4]);
    expect((await storedEvents(t.fake, 'ns1'))[0]!.series?.count).toBe(4);
    repeat(); // the series goes on from 4
    await t.b.idle();
    await t.b.flush();
    expect(seriesCounts()).toEqual([2, 3, 4, 5]);
    expect((await storedEvents(t.fake, 'ns1'))[0]!.series?.count).toBe(5);
  });

  it('rate limits per (source, object): burst 25, then one per 5 minutes', async () => {
    const t = setup();
    for (let i = 0; i < 30; i++) t.rec.event(pod, 'Normal', `Reason${i}`, 'Sync', 'x');
    await t.b.idle();
    expect(t.fake.actions.filter((a) => a.verb === 'create')).toHaveLength(25);
    // Another object has its own bucket.
    t.rec.event(cidr, 'Normal', 'Reason0', 'Sync', 'x');
    await t.b.idle();
    expect(t.fake.actions.filter((a) => a.verb === 'create')).toHaveLength(26);
    expect(await t.registry.getSingleMetricAsString('events_dropped_total')).toContain(
      'events_dropped_total{reason="rate_limited"} 5',
    );
    t.fake.clearActions();
    t.clock.advance(5 * 60_000);
    t.rec.event(pod, 'Normal', 'Late1', 'Sync', 'x');
    t.rec.event(pod, 'Normal', 'Late2', 'Sync', 'x');
    await t.b.idle();
    expect(t.fake.actions.filter((a) => a.verb === 'create').map((a) => (a.body as Event).reason)).toEqual([
      'Late1',
    ]);
  });

  it('never throws into the caller and drops events the apiserver rejects', async () => {
    const t = setup();
    t.fake.prependReactor('create', 'events', () => {
      throw new ApiError({ code: 403, message: 'forbidden', verb: 'create', resource: 'events' });
    });
    expect(() => t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'x')).not.toThrow();
    await t.b.idle();
    expect(t.fake.actions.map((a) => a.verb)).toEqual(['create']);
    expect(await t.registry.getSingleMetricAsString('events_dropped_total')).toContain(
      '{reason="write_failed"} 1',
    );
  });

  it('retries transport errors 10 s apart', async () => {
    const t = setup();
    let calls = 0;
    t.fake.prependReactor('create', 'events', () => {
      if (++calls < 3) throw new Error('ECONNRESET');
      return undefined;
    });
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'x');
    await new Promise((r) => setImmediate(r));
    t.clock.advance(10_000);
    await new Promise((r) => setImmediate(r));
    t.clock.advance(10_000);
    await t.b.idle();
    expect(calls).toBe(3);
    expect(await storedEvents(t.fake, 'ns1')).toHaveLength(1);
  });

  it('bounds the queue: drops events while the writer is stuck', async () => {
    const t = setup({ maxQueued: 3 });
    t.fake.prependReactor('create', 'events', () => new Promise(() => {}));
    for (let i = 0; i < 6; i++) t.rec.event(pod, 'Normal', `R${i}`, 'Sync', 'x');
    await new Promise((r) => setImmediate(r));
    // One in flight (taken off the queue), three queued, two dropped.
    expect(await t.registry.getSingleMetricAsString('events_dropped_total')).toContain(
      '{reason="queue_full"} 2',
    );
  });

  it('recreates the Event when a series patch finds it expired', async () => {
    const t = setup();
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'x');
    await t.b.idle();
    const name = (t.fake.actions[0]!.body as Event).metadata.name!;
    await t.fake.resource(Resources.events).delete(name, { namespace: 'ns1' });
    t.fake.clearActions();
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'x');
    await t.b.idle();
    expect(t.fake.actions.map((a) => a.verb)).toEqual(['patch', 'create']);
    expect((t.fake.actions[1]!.body as Event).series?.count).toBe(2);
  });

  it('cuts notes to the 1 KiB the apiserver accepts', async () => {
    const t = setup();
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'é'.repeat(600));
    await t.b.idle();
    const note = (t.fake.actions[0]!.body as Event).note!;
    expect(Buffer.byteLength(note)).toBe(1024);
  });
});

describe('EventBroadcaster core/v1 recorder', () => {
  function core() {
    const clock = new FakeClock();
    const fake = new FakeKubeClient([], { clock });
    const registry = newRegistry();
    const logger = new MemoryLogger();
    const b = new EventBroadcaster({ client: fake, clock, registry, logger });
    return { clock, fake, b, logger, rec: b.newCoreRecorder('service-cidr-controller') };
  }
  const coreEvents = async (fake: FakeKubeClient, namespace: string) =>
    (await fake.resource<CoreEvent>(Resources.coreEvents).list({ namespace })).items;

  it('creates a core/v1 Event with source.component, as kube-controller-manager does', async () => {
    const t = core();
    t.rec.event(cidr, 'Warning', 'KubernetesServiceCIDRError', 'UpdateStatus', 'status not set');
    await t.b.idle();
    const a = t.fake.actions[0]!;
    expect([a.verb, a.resource, a.namespace]).toEqual(['create', 'events', 'default']);
    const body = a.body as CoreEvent;
    expect(body.metadata.name).toMatch(/^kubernetes\.[0-9a-f]+$/);
    expect(body).toEqual({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: body.metadata.name, namespace: 'default' },
      involvedObject: {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'ServiceCIDR',
        name: 'kubernetes',
        uid: 'u-2',
      },
      reason: 'KubernetesServiceCIDRError',
      message: 'status not set',
      source: { component: 'service-cidr-controller' },
      firstTimestamp: '2026-01-01T00:00:00Z',
      lastTimestamp: '2026-01-01T00:00:00Z',
      count: 1,
      type: 'Warning',
      reportingComponent: 'service-cidr-controller',
      reportingInstance: '',
    });
    // Nothing goes to events.k8s.io/v1.
    expect(
      t.fake.actions.every((a) => a.body === undefined || (a.body as KubeObject).apiVersion === 'v1'),
    ).toBe(true);
  });

  it('counts a repeat on the first Event: patch of count, lastTimestamp and message', async () => {
    const t = core();
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'done');
    await t.b.idle();
    t.clock.advance(5_000);
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'done');
    t.clock.advance(5_000);
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'done');
    await t.b.idle();
    const name = (t.fake.actions[0]!.body as CoreEvent).metadata.name;
    expect(t.fake.actions.slice(1).map((a) => [a.verb, a.name, a.patchType, a.body])).toEqual([
      ['patch', name, 'strategic', { count: 2, lastTimestamp: '2026-01-01T00:00:05Z', message: 'done' }],
      ['patch', name, 'strategic', { count: 3, lastTimestamp: '2026-01-01T00:00:10Z', message: 'done' }],
    ]);
    const [stored] = await coreEvents(t.fake, 'ns1');
    expect(stored).toMatchObject({
      count: 3,
      firstTimestamp: '2026-01-01T00:00:00Z',
      lastTimestamp: '2026-01-01T00:00:10Z',
    });
  });

  it('keeps different messages apart until ten similar ones, then combines them', async () => {
    const t = core();
    for (let i = 1; i <= 12; i++) t.rec.event(pod, 'Warning', 'FailedSync', 'Sync', `error ${i}`);
    await t.b.idle();
    const stored = await coreEvents(t.fake, 'ns1');
    expect(stored).toHaveLength(10);
    const combined = stored.find((e) => e.message.startsWith(AGGREGATE_PREFIX));
    expect(combined).toMatchObject({ message: `${AGGREGATE_PREFIX}error 12`, count: 3 });
  });

  it('recreates the Event when the one it counts on expired', async () => {
    const t = core();
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'x');
    await t.b.idle();
    const name = (t.fake.actions[0]!.body as CoreEvent).metadata.name!;
    await t.fake.resource(Resources.coreEvents).delete(name, { namespace: 'ns1' });
    t.fake.clearActions();
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'x');
    await t.b.idle();
    expect(t.fake.actions.map((a) => a.verb)).toEqual(['patch', 'create']);
    expect((t.fake.actions[1]!.body as CoreEvent).count).toBe(2);
  });

  it('rate limits per (source, object) like the events.k8s.io recorder', async () => {
    const t = core();
    for (let i = 0; i < 30; i++) t.rec.event(pod, 'Normal', `Reason${i}`, 'Sync', 'x');
    await t.b.idle();
    expect(t.fake.actions.filter((a) => a.verb === 'create')).toHaveLength(25);
  });

  it('logs each event at -v 3, as upstream recorders do', async () => {
    const t = core();
    t.rec.event(pod, 'Normal', 'Synced', 'Sync', 'done');
    await t.b.idle();
    expect(t.logger.printedAt(2)).toEqual([]);
    expect(t.logger.printedAt(3).map((l) => [l.msg, l.meta?.reason])).toEqual([['event', 'Synced']]);
  });
});

describe('FakeEventRecorder', () => {
  it('keeps what was recorded', () => {
    const r = new FakeEventRecorder();
    r.event(pod, 'Warning', 'R', 'A', 'n');
    expect(r.events).toEqual([{ regarding: pod, type: 'Warning', reason: 'R', action: 'A', note: 'n' }]);
  });
});
