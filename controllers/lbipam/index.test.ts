import { describe, expect, it } from '@jest/globals';
import { builtinControllers } from '../index.js';
import {
  Controller,
  DefaultSharedInformerFactory,
  newRegistry,
  nopLogger,
  Resources,
  type ControllerContext,
} from '../../lib/index.js';
import { FakeClock, FakeEventRecorder, FakeKubeClient, fakeSharding } from '../../lib/testing.js';
import { serviceLBIPAMController } from './index.js';
import { LB_CLASS, loadBalancerIPPools, type LBService, type LoadBalancerIPPool } from './types.js';

describe('service-lb-ipam-controller definition', () => {
  it('is a built-in, on by default, with its flags', () => {
    expect(builtinControllers).toContain(serviceLBIPAMController);
    expect(serviceLBIPAMController.name).toBe('service-lb-ipam-controller');
    expect(serviceLBIPAMController.enabledByDefault).toBe(true);
    expect(serviceLBIPAMController.flags.map((f) => [f.name, f.type ?? 'number', f.defaultValue])).toEqual([
      ['concurrent-lb-ipam-syncs', 'number', 5],
      ['lb-ipam-default-class', 'boolean', 0],
      ['lb-ipam-release-hold', 'duration', 10_000],
    ]);
  });

  it('asks for exactly the rules it uses', () => {
    expect(serviceLBIPAMController.rbac).toEqual([
      { apiGroups: [''], resources: ['namespaces'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['services'], verbs: ['list', 'patch', 'watch'] },
      { apiGroups: [''], resources: ['services/status'], verbs: ['patch'] },
      { apiGroups: ['lb.ts-kcm.io'], resources: ['loadbalancerippools'], verbs: ['list', 'watch'] },
      { apiGroups: ['lb.ts-kcm.io'], resources: ['loadbalancerippools/status'], verbs: ['patch'] },
      {
        apiGroups: ['networking.k8s.io'],
        resources: ['ipaddresses'],
        verbs: ['create', 'delete', 'list', 'patch', 'watch'],
      },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    ]);
  });
});

describe('service-lb-ipam-controller on a sharding ring', () => {
  it('a key that moves to another replica mid-reconcile stops writing: the held finalizer patch is cancelled, no IPAddress is created', async () => {
    const clock = new FakeClock();
    const svc: LBService = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'a', namespace: 'ns' },
      spec: { type: 'LoadBalancer', loadBalancerClass: LB_CLASS, ipFamilies: ['IPv4'] },
    };
    const pool: LoadBalancerIPPool = {
      apiVersion: 'lb.ts-kcm.io/v1alpha1',
      kind: 'LoadBalancerIPPool',
      metadata: { name: 'p', generation: 1 },
      spec: { addresses: ['10.9.0.0/30'] },
    };
    const client = new FakeKubeClient([svc, pool], { clock, resources: [loadBalancerIPPools] });
    const { sharding, move } = fakeSharding(['ns/a']);
    const ctx: ControllerContext = {
      client,
      informers: new DefaultSharedInformerFactory(client, { clock }),
      eventRecorder: () => new FakeEventRecorder(),
      logger: nopLogger(),
      metrics: newRegistry(),
      clock,
      flags: {},
      sharding,
    };
    const runner = serviceLBIPAMController.create(ctx) as Controller;
    ctx.informers.informerFor<LBService>(Resources.services).getIndexer().add(svc);
    ctx.informers.informerFor<LoadBalancerIPPool>(loadBalancerIPPools).getIndexer().add(pool);
    let release = (): void => {};
    const held = new Promise<undefined>((r) => (release = () => r(undefined)));
    client.prependReactor('patch', 'services', () => {
      move([]);
      return held;
    });
    runner.queue.add('ns/a');
    const step = runner.processNextWorkItem();
    await new Promise((r) => setImmediate(r));
    release(); // without the per-key signal the reconcile would go on to create an IPAddress
    await step;
    expect(client.writeActions().map((a) => `${a.verb} ${a.resource}`)).toEqual(['patch services']);
    expect(client.tracker.list(Resources.ipAddresses)).toEqual([]);
  });
});
