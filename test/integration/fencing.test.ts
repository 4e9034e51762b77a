/**
 * Lost-lease fencing on the real apiserver: once the leader's renewals fail past the renew
 * deadline, the manager exits 1 at once, and no write of a reconcile still running — with or
 * without its signal — reaches the apiserver (the ConfigMap's resourceVersion does not move).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../../lib/api/index.js';
import {
  ApiError,
  createKubeClient,
  loadKubeConfig,
  Resources,
  type KubeClient,
  type RestKubeClient,
} from '../../lib/client/index.js';
import { nopLogger } from '../../lib/log/index.js';
import { Manager } from '../../lib/manager/index.js';
import { defineController } from '../../lib/sdk/define.js';
import {
  createTestNamespace,
  deleteNamespace,
  testKubeconfigPath,
  uniqueName,
  waitFor,
} from '../support/cluster.js';

let client: RestKubeClient;
let ns: string;

beforeAll(async () => {
  client = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }), { qps: 100, burst: 200 });
  ns = await createTestNamespace('fencing');
});

afterAll(async () => {
  await deleteNamespace(ns);
  await client.close();
});

/** The Lease's client, with a switch that makes every Lease request fail (renewals included). */
function breakableLeaseClient(real: KubeClient): { client: KubeClient; breakIt: () => void } {
  let broken = false;
  const wrapped: KubeClient = {
    resource: (ref) => {
      const rc = real.resource(ref);
      return new Proxy(rc, {
        get(target, prop, receiver) {
          const value: unknown = Reflect.get(target, prop, receiver);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            if (broken)
              return Promise.reject(
                new ApiError({
                  code: 503,
                  message: 'lease API unavailable (test)',
                  verb: 'update',
                  resource: 'leases',
                }),
              );
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    },
    serverVersion: () => real.serverVersion(),
    requestRaw: (m, p, b) => real.requestRaw(m, p, b),
  };
  return { client: wrapped, breakIt: () => (broken = true) };
}

describe('lost-lease fencing', () => {
  it('after the Lease is lost no write of the old leader reaches the apiserver', async () => {
    const label = uniqueName('fence');
    const cms = client.resource(Resources.configmaps);
    await cms.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'cm1', namespace: ns, labels: { fence: label } },
    });
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    const outcomes: string[] = [];
    const controller = defineController({
      name: 'fence-test-controller',
      for: Resources.configmaps,
      predicates: [(_old, obj) => obj.metadata.labels?.fence === label],
      async reconcile(req, ctx) {
        if (req.name !== 'cm1' || outcomes.length > 0) return;
        const rc = ctx.client.resource(Resources.configmaps);
        const mark = (step: string): KubeObject => ({ metadata: { annotations: { step } } });
        await rc.patch('cm1', mark('1'), { type: 'merge', namespace: ns, signal: ctx.signal });
        outcomes.push('step 1 written');
        await stuck; // work that does not look at the signal, while the Lease is lost
        await rc.patch('cm1', mark('2'), { type: 'merge', namespace: ns, signal: ctx.signal }).then(
          () => outcomes.push('step 2 written'),
          () => outcomes.push('step 2 refused'),
        );
        // A careless write without the signal: the fenced client refuses it all the same.
        await rc.patch('cm1', mark('3'), { type: 'merge', namespace: ns }).then(
          () => outcomes.push('step 3 written'),
          () => outcomes.push('step 3 refused'),
        );
        ctx.recorder.event(req.object!, 'Normal', 'Late', 'Write', 'must not be written');
      },
    });
    const lease = breakableLeaseClient(client);
    const manager = new Manager(
      {
        leaderElect: true,
        leaseName: uniqueName('fence-lease'),
        leaseNamespace: ns,
        leaseDurationMs: 3000,
        renewDeadlineMs: 2000,
        retryPeriodMs: 500,
        metricsBindAddress: '0',
        healthProbeBindAddress: '0',
      },
      { client, leaderElectionClient: lease.client, definitions: [controller], logger: nopLogger() },
    );
    const stop = new AbortController();
    const done = manager.run(stop.signal);
    try {
      await waitFor(() => outcomes.includes('step 1 written'), { timeoutMs: 30_000, description: 'step 1' });
      lease.breakIt();
      // Exits 1 once the renew deadline (2 s) has passed: no drain, no event flush on top
      // (a duration, so not asserted here; see the unit test for "no wait").
      expect(await done).toBe(1);
      const before = await cms.get('cm1', ns);
      release();
      await waitFor(() => outcomes.length === 3, {
        timeoutMs: 10_000,
        description: 'the reconcile to finish',
      });
      expect(outcomes).toEqual(['step 1 written', 'step 2 refused', 'step 3 refused']);
      await new Promise((r) => setTimeout(r, 1000));
      const after = await cms.get('cm1', ns);
      expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
      expect(after.metadata.annotations).toEqual({ step: '1' });
      const events = await client.resource(Resources.coreEvents).list({ namespace: ns });
      expect(events.items.filter((e) => (e as { reason?: string }).reason === 'Late')).toEqual([]);
    } finally {
      release();
      stop.abort();
      await done;
    }
  }, 90_000);
});
