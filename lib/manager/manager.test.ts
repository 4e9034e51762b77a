import { describe, expect, it } from '@jest/globals';
import type { KubeObject, Lease } from '../api/index.js';
import { ApiError, FakeKubeClient, Resources, type ResourceRef } from '../client/index.js';
import { FakeClock } from '../clock/index.js';
import type { ControllerDefinition } from '../controller/types.js';
import type { SharedInformerFactory, SharedIndexInformer } from '../informer/types.js';
import { nopLogger } from '../log/index.js';
import { newRegistry } from '../metrics/index.js';
import { Manager, type ManagerOptions } from './index.js';

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

type StubEntry = { synced: boolean; error?: unknown; informer: SharedIndexInformer; wake: () => void };

/**
 * An informer factory whose informers the test syncs (or fails) by hand, per resource. With
 * `whenSynced`, its informers also tell when they sync (as the real one does); without, the
 * cache-sync gate can only poll them.
 */
function stubFactory(opts: { whenSynced?: boolean } = {}) {
  const state = { started: 0, informers: 0 };
  const informers = new Map<string, StubEntry>();
  const factory: SharedInformerFactory = {
    informerFor: <T extends KubeObject>(ref: ResourceRef) => {
      let entry = informers.get(ref.resource);
      if (!entry) {
        state.informers++;
        let wake = () => undefined as void;
        const synced = new Promise<void>((resolve) => (wake = resolve));
        const e: StubEntry = {
          synced: false,
          wake: () => wake(),
          informer: {
            ref,
            hasSynced: () => e.synced,
            syncError: () => (e.synced ? undefined : e.error),
            ...(opts.whenSynced ? { whenSynced: () => synced } : {}),
          } as SharedIndexInformer,
        };
        entry = e;
        informers.set(ref.resource, e);
      }
      return entry.informer as unknown as SharedIndexInformer<T>;
    },
    start: () => void state.started++,
    waitForCacheSync: () => Promise.reject(new Error('the manager waits per controller')),
  };
  return {
    factory,
    state,
    /** Sync every informer made so far, or only `resource`'s. */
    sync: (resource?: string) => {
      for (const [r, e] of informers)
        if (resource === undefined || r === resource) {
          e.synced = true;
          e.wake();
        }
    },
    fail: (resource: string, error: unknown) => {
      informers.get(resource)!.error = error;
    },
  };
}

/** A controller that runs until aborted, then takes `drainMs` (on the fake clock) to finish. */
function testController(
  log: string[],
  name = 'test-controller',
  ref: ResourceRef = Resources.pods,
): ControllerDefinition {
  return {
    name,
    enabledByDefault: true,
    flags: [{ name: 'concurrent-test-syncs', description: 'workers', defaultValue: 3 }],
    rbac: [],
    create(ctx) {
      ctx.informers.informerFor(ref);
      log.push(`create ${name} workers=${ctx.flags['concurrent-test-syncs']}`);
      return {
        run: async (signal) => {
          log.push(`run ${name}`);
          await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
          log.push(`stopped ${name}`);
        },
      };
    },
  };
}

function setup(
  opts: Partial<ManagerOptions>,
  defs?: ControllerDefinition[],
  seed: Lease[] = [],
  stubOpts: { whenSynced?: boolean } = {},
) {
  const clock = new FakeClock();
  const fake = new FakeKubeClient(seed, { clock });
  const log: string[] = [];
  const stub = stubFactory(stubOpts);
  const registry = newRegistry({ processMetrics: true });
  const manager = new Manager(
    {
      metricsBindAddress: '127.0.0.1:0',
      healthProbeBindAddress: '127.0.0.1:0',
      settleMemory: false,
      ...opts,
    },
    {
      client: fake,
      definitions: defs ?? [testController(log)],
      logger: nopLogger(),
      registry,
      clock,
      identity: 'host_1234',
      informerFactory: () => stub.factory,
    },
  );
  const stop = new AbortController();
  const done = manager.run(stop.signal);
  return { clock, fake, log, stub, manager, stop, done };
}

async function get(address: string | undefined, path: string): Promise<[number, string]> {
  const res = await fetch(`http://${address}${path}`);
  return [res.status, await res.text()];
}

describe('Manager', () => {
  it('is ready only after caches sync, serves metrics, and stops cleanly', async () => {
    const t = setup({ leaderElect: false, controllerFlags: { 'concurrent-test-syncs': 7 } });
    await settle();
    expect(t.manager.healthAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(t.log).toEqual(['create test-controller workers=7']);
    expect(t.stub.state).toEqual({ started: 1, informers: 1 });
    expect(await get(t.manager.healthAddress, '/readyz')).toEqual([
      500,
      '[+]ping ok\n[+]leaderElection ok\n[-]informer-sync failed: reason withheld\n[-]controllers-started failed: reason withheld\n[+]shutdown ok\nreadyz check failed\n',
    ]);
    expect(await get(t.manager.healthAddress, '/healthz')).toEqual([200, 'ok']);
    t.stub.sync();
    t.clock.advance(100); // the cache-sync gate polls every 100 ms, as client-go
    await settle();
    expect(t.log).toEqual(['create test-controller workers=7', 'run test-controller']);
    expect(await get(t.manager.healthAddress, '/readyz')).toEqual([200, 'ok']);
    expect(await get(t.manager.healthAddress, '/readyz?verbose')).toEqual([
      200,
      '[+]ping ok\n[+]leaderElection ok\n[+]informer-sync ok\n[+]controllers-started ok\n[+]shutdown ok\nreadyz check passed\n',
    ]);
    expect(await get(t.manager.healthAddress, '/readyz/informer-sync')).toEqual([200, 'ok']);
    expect(await get(t.manager.healthAddress, '/metrics')).toEqual([404, '404 page not found\n']);
    const [status, body] = await get(t.manager.metricsAddress, '/metrics');
    expect(status).toBe(200);
    expect(body).toContain('process_cpu_user_seconds_total');
    t.stop.abort();
    expect(await t.done).toBe(0);
    expect(t.log).toEqual([
      'create test-controller workers=7',
      'run test-controller',
      'stopped test-controller',
    ]);
    await expect(fetch(`http://${t.manager.healthAddress}/healthz`)).rejects.toThrow();
  });

  it('with a sharding ring: every replica runs its controllers, hands each its sharding, shows the ring in /readyz?verbose', async () => {
    const seen: (boolean | undefined)[] = [];
    const def: ControllerDefinition = {
      ...testController([]),
      sharding: { shardable: true },
      create(ctx) {
        seen.push(ctx.sharding?.owns('default/a'));
        return {
          run: (signal) => new Promise((r) => signal.addEventListener('abort', () => r(), { once: true })),
        };
      },
    };
    const t = setup({ leaderElect: true, shardingRing: 'workers' }, [def]);
    await settle();
    t.stub.sync();
    await settle();
    // Controllers start at once (no Lease to win) but own nothing during the warm-up.
    expect(seen).toEqual([false]);
    const leases = await t.fake.resource<Lease>(Resources.leases).list({ namespace: 'kube-system' });
    expect(
      leases.items.map((l) => [l.metadata.labels?.['sharding.ts-kcm.io/ring'], l.spec?.holderIdentity]),
    ).toEqual([['workers', 'host_1234']]);
    expect(leases.items.find((l) => l.metadata.name === 'ts-kcm')).toBeUndefined();
    const [, verbose] = await get(t.manager.healthAddress, '/readyz?verbose');
    expect(verbose).toContain('[+]shard-ring ok (ring=workers members=1 [host_1234] self=warming-up)');
    for (let i = 0; i < 20; i++) {
      t.clock.advance(1000);
      await settle();
    }
    const [, after] = await get(t.manager.healthAddress, '/readyz?verbose');
    expect(after).toContain('self=active');
    const [, metrics] = await get(t.manager.metricsAddress, '/metrics');
    expect(metrics).toContain('ts_kcm_shard_members{ring="workers"} 1');
    expect(metrics).toMatch(/ts_kcm_shard_rebalances_total [1-9]/);
    t.stop.abort();
    expect(await t.done).toBe(0);
    const released = await t.fake.resource<Lease>(Resources.leases).list({ namespace: 'kube-system' });
    expect(released.items[0]?.spec?.holderIdentity).toBe('');
  });

  it('with leader election: leads, runs controllers, and releases the lease on shutdown', async () => {
    const t = setup({ leaderElect: true });
    await settle();
    expect(t.log).toEqual(['create test-controller workers=3']);
    t.stub.sync();
    t.clock.advance(100); // the cache-sync gate polls every 100 ms, as client-go
    await settle();
    const leases = t.fake.resource<Lease>(Resources.leases);
    expect((await leases.get('ts-kcm', 'kube-system')).spec?.holderIdentity).toBe('host_1234');
    const [, metrics] = await get(t.manager.metricsAddress, '/metrics');
    expect(metrics).toContain('leader_election_master_status{name="ts-kcm"} 1');
    t.stop.abort();
    expect(await t.done).toBe(0);
    expect(t.log.at(-1)).toBe('stopped test-controller');
    const released = await leases.get('ts-kcm', 'kube-system');
    expect(released.spec?.holderIdentity).toBe('');
    expect(released.spec?.leaseDurationSeconds).toBe(1);
  });

  it('/healthz turns red while the event loop is blocked 10 s or more, and green again after', async () => {
    const t = setup({ leaderElect: false });
    await settle();
    expect(await get(t.manager.healthAddress, '/healthz?verbose')).toEqual([
      200,
      '[+]ping ok\n[+]leaderElection ok\n[+]event-loop ok\nhealthz check passed\n',
    ]);
    t.clock.block(12_000); // a synchronous pass that long: no timer could fire meanwhile
    t.clock.advance(0);
    expect(await get(t.manager.healthAddress, '/healthz')).toEqual([
      500,
      '[+]ping ok\n[+]leaderElection ok\n[-]event-loop failed: reason withheld\nhealthz check failed\n',
    ]);
    expect((await get(t.manager.healthAddress, '/livez'))[0]).toBe(500);
    expect((await get(t.manager.healthAddress, '/readyz?exclude=informer-sync,controllers-started'))[0]).toBe(
      200,
    );
    t.clock.advance(20_000);
    expect(await get(t.manager.healthAddress, '/healthz')).toEqual([200, 'ok']);
    t.stop.abort();
    expect(await t.done).toBe(0);
    expect(t.clock.pendingTimers()).toBe(0);
  });

  it('/healthz stays green while the apiserver is briefly unreachable (the leader keeps retrying)', async () => {
    const t = setup({ leaderElect: true });
    await settle();
    t.stub.sync();
    t.clock.advance(100);
    await settle();
    let away = true;
    t.fake.prependReactor('*', '*', () => {
      if (away)
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
      return undefined;
    });
    for (let i = 0; i < 8; i++) {
      t.clock.advance(1_000);
      await settle();
      expect(await get(t.manager.healthAddress, '/healthz')).toEqual([200, 'ok']);
    }
    away = false;
    t.clock.advance(2_000);
    await settle();
    expect(await get(t.manager.healthAddress, '/healthz')).toEqual([200, 'ok']);
    const [, metrics] = await get(t.manager.metricsAddress, '/metrics');
    expect(metrics).toContain('leader_election_master_status{name="ts-kcm"} 1');
    t.stop.abort();
    expect(await t.done).toBe(0);
  });

  it('as a standby builds no controllers and is ready (waiting for the Lease)', async () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const held: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'ts-kcm', namespace: 'kube-system' },
      spec: { holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: new Date(now).toISOString() },
    };
    const t = setup({ leaderElect: true }, undefined, [held]);
    await settle();
    expect(t.log).toEqual([]);
    expect(await get(t.manager.healthAddress, '/readyz')).toEqual([200, 'ok']);
    expect(await get(t.manager.healthAddress, '/healthz')).toEqual([200, 'ok']);
    t.stop.abort();
    expect(await t.done).toBe(0);
    expect(
      (await t.fake.resource<Lease>(Resources.leases).get('ts-kcm', 'kube-system')).spec?.holderIdentity,
    ).toBe('other');
  });

  it('stops all work and exits 1 when leadership is lost', async () => {
    const t = setup({ leaderElect: true });
    await settle();
    t.stub.sync();
    t.clock.advance(100); // the cache-sync gate polls every 100 ms, as client-go
    await settle();
    t.fake.prependReactor('*', 'leases', () => {
      throw new ApiError({ code: 503, message: 'unavailable', verb: 'update', resource: 'leases' });
    });
    for (let i = 0; i < 24; i++) {
      t.clock.advance(500);
      await settle();
    }
    expect(await t.done).toBe(1);
    expect(t.log).toEqual([
      'create test-controller workers=3',
      'run test-controller',
      'stopped test-controller',
    ]);
  });

  it('starts a controller the moment its informers say they synced, without waiting for the next poll', async () => {
    const t = setup({ leaderElect: false }, undefined, [], { whenSynced: true });
    await settle();
    t.clock.advance(150);
    await settle();
    expect(t.log).toEqual(['create test-controller workers=3']);
    t.stub.sync(); // between two polls; the fake clock does not move
    await settle();
    expect(t.log).toEqual(['create test-controller workers=3', 'run test-controller']);
    t.stop.abort();
    expect(await t.done).toBe(0);
  });

  it('starts each controller when its own caches sync; one waiting for an API not served keeps /readyz 200', async () => {
    const pools: ResourceRef = {
      group: 'lb.ts-kcm.io',
      version: 'v1alpha1',
      resource: 'loadbalancerippools',
      kind: 'LoadBalancerIPPool',
      namespaced: false,
    };
    const log: string[] = [];
    const t = setup({ leaderElect: false }, [
      testController(log, 'builtin'),
      testController(log, 'ipam', pools),
    ]);
    await settle();
    t.stub.fail(
      'loadbalancerippools',
      new ApiError({
        code: 404,
        message: 'the server could not find the requested resource',
        verb: 'list',
        resource: 'loadbalancerippools',
      }),
    );
    t.stub.sync('pods');
    t.clock.advance(100);
    await settle();
    expect(log).toEqual(['create builtin workers=3', 'create ipam workers=3', 'run builtin']);
    expect(t.stub.state).toEqual({ started: 1, informers: 2 });
    expect(await get(t.manager.healthAddress, '/readyz')).toEqual([200, 'ok']);
    expect(await get(t.manager.healthAddress, '/readyz?verbose')).toEqual([
      200,
      '[+]ping ok\n[+]leaderElection ok\n' +
        '[+]informer-sync ok (ipam waits for lb.ts-kcm.io/v1alpha1 loadbalancerippools: the API server does not serve it (is the CRD installed?))\n' +
        '[+]controllers-started ok\n[+]shutdown ok\nreadyz check passed\n',
    ]);
    // The CRD appears: the informer's next list succeeds, the gate opens by itself.
    t.stub.sync('loadbalancerippools');
    t.clock.advance(100);
    await settle();
    expect(log).toEqual(['create builtin workers=3', 'create ipam workers=3', 'run builtin', 'run ipam']);
    expect(await get(t.manager.healthAddress, '/readyz?verbose')).toEqual([
      200,
      '[+]ping ok\n[+]leaderElection ok\n[+]informer-sync ok\n[+]controllers-started ok\n[+]shutdown ok\nreadyz check passed\n',
    ]);
    t.stop.abort();
    expect(await t.done).toBe(0);
  });

  it('controllers watching the same resource still share one informer', async () => {
    const log: string[] = [];
    const t = setup({ leaderElect: false }, [testController(log, 'one'), testController(log, 'two')]);
    await settle();
    expect(t.stub.state).toEqual({ started: 1, informers: 1 });
    t.stub.sync();
    t.clock.advance(100);
    await settle();
    expect(log).toEqual(['create one workers=3', 'create two workers=3', 'run one', 'run two']);
    t.stop.abort();
    expect(await t.done).toBe(0);
  });

  it('a Forbidden informer holds back only its controller, and /readyz fails', async () => {
    const log: string[] = [];
    const t = setup({ leaderElect: false }, [
      testController(log, 'builtin'),
      testController(log, 'needs-rbac', Resources.serviceCIDRs),
    ]);
    await settle();
    t.stub.fail(
      'servicecidrs',
      new ApiError({
        code: 403,
        message: 'servicecidrs is forbidden',
        verb: 'list',
        resource: 'servicecidrs',
      }),
    );
    t.stub.sync('pods');
    t.clock.advance(100);
    await settle();
    expect(log).toEqual(['create builtin workers=3', 'create needs-rbac workers=3', 'run builtin']);
    expect((await get(t.manager.healthAddress, '/readyz'))[0]).toBe(500);
    t.stop.abort();
    expect(await t.done).toBe(0);
  });

  it('exits 1 when a controller cannot be built', async () => {
    const broken: ControllerDefinition = {
      name: 'broken',
      enabledByDefault: true,
      flags: [],
      rbac: [],
      create: () => {
        throw new Error('not implemented');
      },
    };
    const t = setup({ leaderElect: false }, [broken]);
    expect(await t.done).toBe(1);
  });

  it('rejects unknown controllers and bad addresses up front', () => {
    const deps = { client: new FakeKubeClient(), definitions: [testController([])], logger: nopLogger() };
    expect(() => new Manager({ controllers: ['*', 'nope'] }, deps)).toThrow('unknown controller "nope"');
    expect(() => new Manager({ metricsBindAddress: '8080' }, deps)).toThrow('invalid bind address "8080"');
  });

  it('honours `0` for both servers', async () => {
    const t = setup({ leaderElect: false, metricsBindAddress: '0', healthProbeBindAddress: '0' });
    await settle();
    expect(t.manager.metricsAddress).toBeUndefined();
    expect(t.manager.healthAddress).toBeUndefined();
    t.stop.abort();
    expect(await t.done).toBe(0);
  });
});
