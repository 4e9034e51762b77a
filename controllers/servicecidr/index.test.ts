import { describe, expect, it } from '@jest/globals';
import type { IPAddress, ServiceCIDR } from '../../lib/api/index.js';
import { FakeKubeClient, Resources } from '../../lib/client/index.js';
import { FakeClock } from '../../lib/clock/index.js';
import { Controller, type ControllerContext } from '../../lib/controller/index.js';
import { FakeEventRecorder } from '../../lib/events/index.js';
import { DefaultSharedInformerFactory } from '../../lib/informer/index.js';
import { nopLogger } from '../../lib/log/index.js';
import { newRegistry } from '../../lib/metrics/index.js';
import { deferred, fakeSharding } from '../../lib/sharding/testing.js';
import { serviceCIDRController } from './index.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const FINALIZER = 'networking.k8s.io/service-cidr-finalizer';

function contextFor(client: FakeKubeClient, clock: FakeClock, flags: Record<string, number> = {}) {
  const registry = newRegistry();
  const recorders: string[] = [];
  const ctx: ControllerContext = {
    client,
    informers: new DefaultSharedInformerFactory(client, { clock }),
    eventRecorder: (component) => {
      recorders.push(component);
      return new FakeEventRecorder();
    },
    logger: nopLogger(),
    metrics: registry,
    clock,
    flags,
  };
  return { ctx, registry, recorders };
}

describe('serviceCIDRController definition', () => {
  it('has the upstream name, the workers flag and exactly the RBAC it needs', () => {
    expect(serviceCIDRController.name).toBe('service-cidr-controller');
    expect(serviceCIDRController.enabledByDefault).toBe(true);
    expect(serviceCIDRController.flags).toEqual([
      { name: 'concurrent-service-cidr-syncs', description: expect.any(String), defaultValue: 5 },
    ]);
    expect(serviceCIDRController.rbac).toEqual([
      {
        apiGroups: ['networking.k8s.io'],
        resources: ['servicecidrs'],
        verbs: ['list', 'watch', 'patch'],
      },
      { apiGroups: ['networking.k8s.io'], resources: ['servicecidrs/status'], verbs: ['patch'] },
      { apiGroups: ['networking.k8s.io'], resources: ['ipaddresses'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    ]);
  });

  it('builds a runner over a queue named "ipaddresses", recording events as service-cidr-controller', async () => {
    const client = new FakeKubeClient();
    const { ctx, registry, recorders } = contextFor(client, new FakeClock(NOW), {
      'concurrent-service-cidr-syncs': 2,
    });
    const runnable = serviceCIDRController.create(ctx);
    expect(runnable).toBeInstanceOf(Controller);
    expect(recorders).toEqual(['service-cidr-controller']);
    (runnable as Controller).queue.add('x');
    const depth = await registry.getSingleMetric('workqueue_depth')?.get();
    expect(depth?.values).toContainEqual(
      expect.objectContaining({ labels: { name: 'ipaddresses' }, value: 1 }),
    );
  });

  it('never removes the finalizer inside the grace window: requeued by addAfter, released at exactly +10 s', async () => {
    const clock = new FakeClock(NOW);
    const deleting: ServiceCIDR = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: 'going', finalizers: [FINALIZER], deletionTimestamp: '2026-01-01T00:00:00Z' },
      spec: { cidrs: ['10.100.0.0/16'] },
    };
    const client = new FakeKubeClient([deleting], { clock });
    const { ctx } = contextFor(client, clock);
    const runner = serviceCIDRController.create(ctx) as Controller;
    ctx.informers.informerFor<ServiceCIDR>(Resources.serviceCIDRs).getIndexer().add(deleting);
    ctx.informers.informerFor<IPAddress>(Resources.ipAddresses);

    runner.queue.add('going');
    await runner.processNextWorkItem();
    expect(client.actions).toEqual([]);
    expect(runner.queue.len()).toBe(0);

    // Step through the window; the key must not come back, nothing must be written.
    for (let t = 0; t < 9; t++) {
      clock.advance(1000);
      expect(runner.queue.len()).toBe(0);
    }
    clock.advance(999);
    expect(runner.queue.len()).toBe(0);
    expect(client.actions).toEqual([]);

    clock.advance(1); // deletionTimestamp + 10 s
    expect(runner.queue.len()).toBe(1);
    await runner.processNextWorkItem();
    expect(client.actions).toEqual([
      {
        verb: 'patch',
        resource: 'servicecidrs',
        name: 'going',
        patchType: 'strategic',
        body: { metadata: { '$deleteFromPrimitiveList/finalizers': [FINALIZER] } },
      },
    ]);
  });

  it('bad input (unparsable spec, unparsable IPAddress name) neither fails a key nor holds up the others', async () => {
    const clock = new FakeClock(NOW);
    const bad: ServiceCIDR = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: 'bad', finalizers: [FINALIZER], deletionTimestamp: '2025-12-31T00:00:00Z' },
      spec: { cidrs: ['10.0.0.0/99', 'garbage'] },
    };
    const good: ServiceCIDR = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: 'good' },
      spec: { cidrs: ['10.9.0.0/24'] },
    };
    const weird: IPAddress = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'IPAddress',
      metadata: {
        name: 'not-an-ip',
        labels: {
          'ipaddress.kubernetes.io/ip-family': 'IPv4',
          'ipaddress.kubernetes.io/managed-by': 'ipallocator.k8s.io',
        },
      },
    };
    const client = new FakeKubeClient([bad, good], { clock });
    const { ctx } = contextFor(client, clock);
    const runner = serviceCIDRController.create(ctx) as Controller;
    ctx.informers.informerFor<ServiceCIDR>(Resources.serviceCIDRs).getIndexer().add(bad);
    ctx.informers.informerFor<ServiceCIDR>(Resources.serviceCIDRs).getIndexer().add(good);
    ctx.informers.informerFor<IPAddress>(Resources.ipAddresses).getIndexer().add(weird);

    runner.queue.add('bad');
    runner.queue.add('good');
    await runner.processNextWorkItem();
    await runner.processNextWorkItem();
    expect(client.actions.map((a) => [a.name, a.subresource ?? '', a.patchType])).toEqual([
      ['bad', '', 'strategic'], // nothing parses, so nothing can be orphaned: finalizer released
      ['good', '', 'strategic'],
      ['good', 'status', 'apply'],
    ]);
    expect(runner.queue.numRequeues('bad')).toBe(0);
    expect(runner.queue.len()).toBe(0);
  });

  it('an early sync (e.g. an IPAddress event) inside the window still writes nothing and keeps the earlier deadline', async () => {
    const clock = new FakeClock(NOW);
    const deleting: ServiceCIDR = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: 'going', finalizers: [FINALIZER], deletionTimestamp: '2026-01-01T00:00:00Z' },
      spec: { cidrs: ['10.100.0.0/16'] },
    };
    const client = new FakeKubeClient([deleting], { clock });
    const { ctx } = contextFor(client, clock);
    const runner = serviceCIDRController.create(ctx) as Controller;
    ctx.informers.informerFor<ServiceCIDR>(Resources.serviceCIDRs).getIndexer().add(deleting);

    runner.queue.add('going');
    await runner.processNextWorkItem();
    clock.advance(4000);
    runner.queue.add('going'); // something else brought it back early
    await runner.processNextWorkItem();
    expect(client.actions).toEqual([]);
    clock.advance(5999);
    expect(runner.queue.len()).toBe(0);
    clock.advance(1);
    expect(runner.queue.len()).toBe(1);
    await runner.processNextWorkItem();
    expect(client.actions.map((a) => [a.verb, a.name, a.patchType])).toEqual([
      ['patch', 'going', 'strategic'],
    ]);
  });

  it('a key that moves to another replica mid-reconcile stops writing: the held finalizer patch is cancelled, no status write follows', async () => {
    const clock = new FakeClock(NOW);
    const fresh: ServiceCIDR = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: 'moving' },
      spec: { cidrs: ['10.100.0.0/16'] },
    };
    const client = new FakeKubeClient([fresh], { clock });
    const { ctx } = contextFor(client, clock);
    const { sharding, move } = fakeSharding(['moving']);
    ctx.sharding = sharding;
    const runner = serviceCIDRController.create(ctx) as Controller;
    ctx.informers.informerFor<ServiceCIDR>(Resources.serviceCIDRs).getIndexer().add(fresh);
    ctx.informers.informerFor<IPAddress>(Resources.ipAddresses);
    const held = deferred();
    client.prependReactor('patch', 'servicecidrs', () => {
      move([]); // the ring changes while the first write is in flight
      return held.promise;
    });
    runner.queue.add('moving');
    const step = runner.processNextWorkItem();
    await new Promise((r) => setImmediate(r));
    held.resolve(); // without the per-key signal the reconcile would go on to the status write
    await step;
    expect(
      client.writeActions().map((a) => `${a.verb} ${a.resource}${a.subresource ? '/' + a.subresource : ''}`),
    ).toEqual(['patch servicecidrs']);
    expect(
      client.tracker.get(Resources.serviceCIDRs, undefined, 'moving')?.metadata.finalizers,
    ).toBeUndefined();
    expect(runner.queue.len()).toBe(0);
  });
});
