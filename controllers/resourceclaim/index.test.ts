import { describe, expect, it } from '@jest/globals';
import type { Pod, ResourceClaimTemplate } from '../../lib/api/index.js';
import { FakeKubeClient, Resources } from '../../lib/client/index.js';
import { FakeClock } from '../../lib/clock/index.js';
import { Controller, type ControllerContext } from '../../lib/controller/index.js';
import { FakeEventRecorder } from '../../lib/events/index.js';
import { DefaultSharedInformerFactory } from '../../lib/informer/index.js';
import { nopLogger } from '../../lib/log/index.js';
import { newRegistry } from '../../lib/metrics/index.js';
import { deferred, fakeSharding } from '../../lib/sharding/testing.js';
import { resourceClaimController } from './index.js';
import { NS, POD_NAME, makePod, makeTemplate } from './testing.js';

function contextFor(client: FakeKubeClient, flags: Record<string, number> = {}) {
  const registry = newRegistry();
  const recorders: string[] = [];
  const recorder = new FakeEventRecorder();
  const ctx: ControllerContext = {
    client,
    informers: new DefaultSharedInformerFactory(client, { clock: new FakeClock() }),
    eventRecorder: (component) => {
      recorders.push(component);
      return recorder;
    },
    logger: nopLogger(),
    metrics: registry,
    clock: new FakeClock(),
    flags,
  };
  return { ctx, registry, recorders, recorder };
}

describe('resourceClaimController definition', () => {
  it('has the upstream name, the workers flag and the RBAC of the spec', () => {
    expect(resourceClaimController.name).toBe('resourceclaim-controller');
    expect(resourceClaimController.aliases).toEqual(['resource-claim-controller']);
    expect(resourceClaimController.enabledByDefault).toBe(true);
    expect(resourceClaimController.flags).toEqual([
      { name: 'concurrent-resourceclaim-syncs', description: expect.any(String), defaultValue: 50 },
    ]);
    expect(resourceClaimController.rbac).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['pods/status'], verbs: ['patch'] },
      {
        apiGroups: ['resource.k8s.io'],
        resources: ['resourceclaims'],
        verbs: ['list', 'watch', 'create', 'delete', 'update'],
      },
      { apiGroups: ['resource.k8s.io'], resources: ['resourceclaims/status'], verbs: ['update', 'patch'] },
      { apiGroups: ['resource.k8s.io'], resources: ['resourceclaimtemplates'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
    ]);
  });

  it('builds a runner over the queue "resource_claim", recording events as resource_claim, fed by the shared informers', async () => {
    const client = new FakeKubeClient([makePod(), makeTemplate()]);
    const { ctx, registry, recorders } = contextFor(client, { 'concurrent-resourceclaim-syncs': 3 });
    const runnable = resourceClaimController.create(ctx);
    expect(runnable).toBeInstanceOf(Controller);
    expect(recorders).toEqual(['resource_claim']);

    // The controller reads the informers of the shared factory: priming them is enough to sync.
    const podInformer = ctx.informers.informerFor<Pod>(Resources.pods);
    ctx.informers
      .informerFor<ResourceClaimTemplate>(Resources.resourceClaimTemplates)
      .getIndexer()
      .add(makeTemplate());
    const pod = client.tracker.get(Resources.pods, NS, POD_NAME) as Pod;
    podInformer.getIndexer().add(pod);
    const runner = runnable as Controller;
    runner.queue.add(`pod:${NS}/${POD_NAME}`);
    const depth = await registry.getSingleMetric('workqueue_depth')?.get();
    expect(depth?.values).toContainEqual(
      expect.objectContaining({ labels: { name: 'resource_claim' }, value: 1 }),
    );

    client.clearActions();
    await runner.processNextWorkItem();
    expect(
      client.writeActions().map((a) => `${a.verb} ${a.resource}${a.subresource ? '/' + a.subresource : ''}`),
    ).toEqual(['create resourceclaims', 'patch pods/status']);
  });

  it('a key that moves to another replica mid-reconcile stops writing: the held claim create is cancelled, no pod status write follows', async () => {
    const client = new FakeKubeClient([makePod(), makeTemplate()]);
    const { ctx } = contextFor(client);
    const key = `pod:${NS}/${POD_NAME}`;
    const { sharding, move } = fakeSharding([key]);
    ctx.sharding = sharding;
    const runner = resourceClaimController.create(ctx) as Controller;
    ctx.informers
      .informerFor<ResourceClaimTemplate>(Resources.resourceClaimTemplates)
      .getIndexer()
      .add(makeTemplate());
    ctx.informers
      .informerFor<Pod>(Resources.pods)
      .getIndexer()
      .add(client.tracker.get(Resources.pods, NS, POD_NAME) as Pod);
    const held = deferred();
    client.prependReactor('create', 'resourceclaims', () => {
      move([]);
      return held.promise;
    });
    runner.queue.add(key);
    client.clearActions();
    const step = runner.processNextWorkItem();
    await new Promise((r) => setImmediate(r));
    held.resolve(); // without the per-key signal the reconcile would go on to patch the pod's status
    await step;
    expect(
      client.writeActions().map((a) => `${a.verb} ${a.resource}${a.subresource ? '/' + a.subresource : ''}`),
    ).toEqual(['create resourceclaims']);
    expect(client.tracker.list(Resources.resourceClaims)).toEqual([]);
    expect(runner.queue.len()).toBe(0);
  });
});
