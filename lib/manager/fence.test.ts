/**
 * Lost-lease fencing and the one drain budget, on the FakeKubeClient and FakeClock: what a
 * reconcile blocked in a client call sees when the Lease is lost or the budget runs out, and
 * that the Lease is released only after every worker has stopped.
 */
import { describe, expect, it } from '@jest/globals';
import type { KubeObject, Lease } from '../api/index.js';
import { ApiError, FakeKubeClient, Resources } from '../client/index.js';
import { FakeClock } from '../clock/index.js';
import { Controller } from '../controller/controller.js';
import type { ControllerDefinition } from '../controller/types.js';
import type { SharedIndexInformer, SharedInformerFactory } from '../informer/types.js';
import { nopLogger } from '../log/index.js';
import { newRateLimitingQueue } from '../workqueue/index.js';
import { Manager, type ManagerOptions } from './index.js';

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** Every informer is synced at once: the test is about what happens after the start. */
const syncedFactory: SharedInformerFactory = {
  informerFor: <T extends KubeObject>() => ({ hasSynced: () => true }) as unknown as SharedIndexInformer<T>,
  start: () => undefined,
  waitForCacheSync: async () => true,
};

const cm = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'ns', uid: `uid-${name}` },
});

/**
 * One worker reconciling key `a` once: it patches ConfigMap `a` (which the test's reactor
 * holds), then — as a careless controller might — creates ConfigMap `late` without passing
 * the signal, and records an event.
 */
function blockingController(log: string[]): ControllerDefinition {
  return {
    name: 'blocker',
    enabledByDefault: true,
    flags: [],
    rbac: [],
    create(ctx) {
      ctx.informers.informerFor(Resources.configmaps);
      const queue = newRateLimitingQueue<string>({ name: 'blocker', clock: ctx.clock });
      queue.add('a');
      const recorder = ctx.eventRecorder('blocker');
      const cms = ctx.client.resource(Resources.configmaps);
      return new Controller({
        name: 'blocker',
        queue,
        workers: 1,
        logger: nopLogger(),
        clock: ctx.clock,
        reconciler: {
          async reconcile(_key, signal) {
            log.push('reconcile started');
            try {
              await cms.patch('a', { data: { k: 'v' } }, { type: 'merge', namespace: 'ns', signal });
              log.push('patch done');
            } catch (err) {
              log.push(`patch failed, signal aborted=${signal.aborted}: ${(err as Error).message}`);
            }
            await cms.create(cm('late')).then(
              () => log.push('late write done'),
              () => log.push('late write refused'),
            );
            recorder.event(cm('a'), 'Normal', 'Late', 'Write', 'written after the patch');
          },
        },
      });
    },
  };
}

function setup(opts: Partial<ManagerOptions>, log: string[]) {
  const clock = new FakeClock();
  const fake = new FakeKubeClient([cm('a')], { clock });
  let releasePatch!: () => void;
  fake.prependReactor('patch', 'configmaps', () => {
    log.push('patch in flight');
    return new Promise((resolve) => (releasePatch = () => resolve(cm('a'))));
  });
  fake.prependReactor('update', 'leases', (action) => {
    const lease = action.body as Lease;
    if (lease.spec?.holderIdentity === '') log.push('lease released');
    return undefined;
  });
  const manager = new Manager(
    { metricsBindAddress: '0', healthProbeBindAddress: '0', leaderElect: true, ...opts },
    {
      client: fake,
      definitions: [blockingController(log)],
      logger: nopLogger(),
      clock,
      identity: 'host_1234',
      informerFactory: () => syncedFactory,
    },
  );
  const stop = new AbortController();
  const done = manager.run(stop.signal);
  return { clock, fake, stop, done, releasePatch: () => releasePatch() };
}

const writesTo = (fake: FakeKubeClient, resource: string) =>
  fake.writeActions().filter((a) => a.resource === resource);

describe('lost-lease fencing', () => {
  it('aborts the request in flight, writes nothing more (events included) and exits 1 at once', async () => {
    const log: string[] = [];
    const t = setup({}, log);
    await settle();
    expect(log).toEqual(['reconcile started', 'patch in flight']);
    const before = t.fake.writeActions().length;
    // Renewals fail from now on: after the renew deadline (10 s) the Lease is lost.
    t.fake.prependReactor('*', 'leases', () => {
      throw new ApiError({ code: 503, message: 'unavailable', verb: 'update', resource: 'leases' });
    });
    let exited: number | undefined;
    void t.done.then((code) => (exited = code));
    for (let i = 0; i < 30 && exited === undefined; i++) {
      t.clock.advance(500);
      await settle();
    }
    expect(exited).toBe(1);
    expect(log).toEqual([
      'reconcile started',
      'patch in flight',
      'patch failed, signal aborted=true: stopping at once: leaderelection lost',
      'late write refused',
    ]);
    // Nothing but failed Lease renewals after the loss: no ConfigMap, no Event.
    const after = t.fake.writeActions().slice(before);
    expect(after.filter((a) => a.resource !== 'leases')).toEqual([]);
    expect(writesTo(t.fake, 'events')).toEqual([]);
    // No drain wait: the process returned without the clock moving on (no 5 s event flush).
    expect(t.clock.pendingTimers()).toBe(0);
  });
});

describe('one drain budget (--shutdown-timeout)', () => {
  it('releases the Lease only after the in-flight reconcile has returned, however long within the budget', async () => {
    const log: string[] = [];
    const t = setup({ shutdownTimeoutMs: 60_000 }, log);
    await settle();
    t.stop.abort();
    await settle();
    t.clock.advance(45_000); // beyond the old per-controller 30 s default, within the budget
    await settle();
    expect(log).toEqual(['reconcile started', 'patch in flight']);
    t.releasePatch();
    expect(await t.done).toBe(0);
    expect(log).toEqual([
      'reconcile started',
      'patch in flight',
      'patch done',
      'late write done',
      'lease released',
    ]);
    expect(writesTo(t.fake, 'events')).toHaveLength(1); // flushed before the Lease went
  });

  it('at the budget end aborts the stragglers, then waits for them, then releases the Lease', async () => {
    const log: string[] = [];
    const t = setup({ shutdownTimeoutMs: 10_000 }, log);
    await settle();
    t.stop.abort();
    await settle();
    t.clock.advance(9_999);
    await settle();
    expect(log).toEqual(['reconcile started', 'patch in flight']);
    t.clock.advance(1);
    expect(await t.done).toBe(0);
    expect(log).toEqual([
      'reconcile started',
      'patch in flight',
      'patch failed, signal aborted=true: shutdown timeout (10000 ms) reached',
      'late write refused',
      'lease released',
    ]);
    expect(writesTo(t.fake, 'configmaps').map((a) => a.verb)).toEqual(['patch']);
  });
});
