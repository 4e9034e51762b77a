/**
 * The per-controller cache-sync gate on the real control plane: a controller over a CRD that
 * is not installed waits (one log line, /readyz 200, ?verbose says why) while the built-in
 * controllers work; installing the CRD makes it start by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeObject, ServiceCIDR } from '../../lib/api/index.js';
import {
  createKubeClient,
  isNotFound,
  loadKubeConfig,
  Resources,
  type RestKubeClient,
  type ResourceRef,
} from '../../lib/client/index.js';
import { serviceCIDRController } from '../../controllers/servicecidr/index.js';
import { createLogger } from '../../lib/log/index.js';
import { Manager } from '../../lib/manager/index.js';
import { defineController } from '../../lib/sdk/define.js';
import { testKubeconfigPath, uniqueName, waitFor } from '../support/cluster.js';

const CRDS: ResourceRef = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  resource: 'customresourcedefinitions',
  kind: 'CustomResourceDefinition',
  namespaced: false,
};

let client: RestKubeClient;
const group = `${uniqueName('gate')}.ts-kcm.io`;
const pools: ResourceRef = {
  group,
  version: 'v1alpha1',
  resource: 'loadbalancerippools',
  kind: 'LoadBalancerIPPool',
  namespaced: false,
};
const crdName = `${pools.resource}.${group}`;
const cidrName = uniqueName('gate-cidr');

beforeAll(() => {
  client = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }), { qps: 100, burst: 200 });
});

afterAll(async () => {
  await client
    .resource(CRDS)
    .delete(crdName)
    .catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
  await client.close();
}, 30_000);

describe('per-controller cache-sync gate', () => {
  it('a controller over a CRD not installed waits while the built-in ones work; installing the CRD starts it', async () => {
    const lines: string[] = [];
    const reconciled: string[] = [];
    const ipam = defineController({
      name: 'service-lb-ipam-controller',
      for: pools,
      reconcile: async (req) => void reconciled.push(req.key),
    });
    const manager = new Manager(
      { leaderElect: false, metricsBindAddress: '0', healthProbeBindAddress: '127.0.0.1:0' },
      {
        client,
        definitions: [serviceCIDRController, ipam],
        logger: createLogger({ format: 'json', write: (l) => void lines.push(l) }),
      },
    );
    const stop = new AbortController();
    const done = manager.run(stop.signal);
    const cidrs = client.resource<ServiceCIDR>(Resources.serviceCIDRs);
    try {
      // The built-in controller works although the other one's informer cannot sync.
      await cidrs.create({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'ServiceCIDR',
        metadata: { name: cidrName },
        spec: { cidrs: ['10.251.0.0/24'] },
      });
      await waitFor(
        async () =>
          (await cidrs.get(cidrName)).metadata.finalizers?.includes(
            'networking.k8s.io/service-cidr-finalizer',
          ),
        { timeoutMs: 30_000, description: 'the ServiceCIDR finalizer from service-cidr-controller' },
      );
      const waitLine = `service-lb-ipam-controller waits for ${group}/v1alpha1 loadbalancerippools: the API server does not serve it (is the CRD installed?)`;
      await waitFor(() => lines.some((l) => l.includes(waitLine)), { description: 'the wait log line' });
      const health = `http://${manager.healthAddress}`;
      expect((await fetch(`${health}/readyz`)).status).toBe(200);
      const verbose = await (await fetch(`${health}/readyz?verbose`)).text();
      expect(verbose).toContain(`[+]informer-sync ok (${waitLine})`);
      expect(reconciled).toEqual([]);

      // Install the CRD and one object: the informer's list retries with backoff and the
      // controller starts by itself.
      await client.resource(CRDS).create({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: crdName },
        spec: {
          group,
          scope: 'Cluster',
          names: { plural: pools.resource, singular: 'loadbalancerippool', kind: pools.kind },
          versions: [
            {
              name: 'v1alpha1',
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
            },
          ],
        },
      } as KubeObject);
      await waitFor(
        async () => {
          try {
            await client.resource(pools).create({
              apiVersion: `${group}/v1alpha1`,
              kind: pools.kind,
              metadata: { name: 'pool-a' },
            });
            return true;
          } catch (err) {
            if ((err as { code?: number }).code === 409) return true;
            throw err;
          }
        },
        { timeoutMs: 30_000, description: 'the CRD served and pool-a created' },
      );
      await waitFor(() => reconciled.includes('pool-a'), {
        timeoutMs: 60_000,
        description: 'service-lb-ipam-controller reconciling pool-a',
      });
      expect(lines.filter((l) => l.includes(waitLine))).toHaveLength(1);
      expect(
        lines.filter((l) => l.includes('"message":"list/watch failed"') && l.includes(group)),
      ).toHaveLength(1);
      expect(await (await fetch(`${health}/readyz?verbose`)).text()).toContain('[+]informer-sync ok\n');
    } finally {
      await cidrs.delete(cidrName).catch(() => undefined);
      await waitFor(
        async () => {
          try {
            await cidrs.get(cidrName);
            return false;
          } catch (err) {
            return isNotFound(err);
          }
        },
        { timeoutMs: 30_000, description: 'the ServiceCIDR gone' },
      ).catch(() => undefined);
      stop.abort();
      expect(await done).toBe(0);
    }
  }, 120_000);
});
