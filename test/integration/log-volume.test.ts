/**
 * What `ts-kcm run -v 0` prints while it works through many objects: kube-controller-manager
 * at -v 0 prints nothing per ServiceCIDR created and one line per deletion, and nothing per
 * generated ResourceClaim. Ours may print at most 2 lines per object, plus at most 50 lines
 * of start-up and shutdown, against the real apiserver.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeObject, Pod, ResourceClaim, ServiceCIDR } from '../../lib/api/index.js';
import {
  createKubeClient,
  isNotFound,
  loadKubeConfig,
  Resources,
  type KubeClient,
} from '../../lib/client/index.js';
import {
  createTestNamespace,
  deleteNamespace,
  startTsKcm,
  testKubeconfigPath,
  uniqueName,
  waitFor,
  type TsKcmProcess,
} from '../support/cluster.js';

const SERVICE_CIDRS = 60;
const PODS = 20;
const FINALIZER = 'networking.k8s.io/service-cidr-finalizer';

let client: KubeClient;
let kcm: TsKcmProcess | undefined;
let ns: string;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  client = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }), { qps: 200, burst: 400 });
  ns = await createTestNamespace('log-volume');
});

afterAll(async () => {
  await kcm?.stop();
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  await deleteNamespace(ns);
});

async function gone(get: () => Promise<unknown>): Promise<boolean> {
  try {
    await get();
    return false;
  } catch (err) {
    if (isNotFound(err)) return true;
    throw err;
  }
}

describe('log volume at -v 0', () => {
  it(`creating and deleting ${SERVICE_CIDRS} ServiceCIDRs and ${PODS} pods with claim templates prints at most 2 lines per object plus 50`, async () => {
    kcm = startTsKcm([
      'run',
      '--controllers=service-cidr-controller,resourceclaim-controller',
      '--leader-elect=false',
      '--metrics-bind-address=0',
      '--health-probe-bind-address=0',
      '--log-format=json',
      '-v',
      '0',
    ]);
    await kcm.waitForOutput(
      /"message":"started controller"[^\n]*resourceclaim-controller|resourceclaim-controller[^\n]*"message":"started controller"/,
      60_000,
    );

    // ---- ServiceCIDRs: create, wait for the controller's finalizer and Ready, delete, wait gone.
    const cidrs = client.resource<ServiceCIDR>(Resources.serviceCIDRs);
    const prefix = uniqueName('logvol');
    const cidrNames = Array.from({ length: SERVICE_CIDRS }, (_, i) => `${prefix}-${i}`);
    await Promise.all(
      cidrNames.map((name, i) =>
        cidrs.create({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'ServiceCIDR',
          metadata: { name },
          spec: { cidrs: [`172.31.${i}.0/24`] },
        }),
      ),
    );
    cleanup.push(() => Promise.all(cidrNames.map((n) => cidrs.delete(n).catch(() => undefined))));
    await waitFor(
      async () => {
        const list = await cidrs.list();
        const ready = list.items.filter(
          (sc) =>
            cidrNames.includes(sc.metadata.name ?? '') &&
            (sc.metadata.finalizers ?? []).includes(FINALIZER) &&
            sc.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === SERVICE_CIDRS;
      },
      { timeoutMs: 60_000, description: 'every ServiceCIDR to get its finalizer and Ready' },
    );

    // ---- Pods with a claim template: the controller creates and publishes one claim each.
    const classes = client.resource(Resources.deviceClasses);
    const deviceClass = uniqueName('logvol-class');
    await classes.create({
      apiVersion: 'resource.k8s.io/v1',
      kind: 'DeviceClass',
      metadata: { name: deviceClass },
      spec: { selectors: [{ cel: { expression: 'device.driver == "logvol.example.com"' } }] },
    } as KubeObject);
    cleanup.push(() => classes.delete(deviceClass));
    await client.resource(Resources.resourceClaimTemplates).create(
      {
        apiVersion: 'resource.k8s.io/v1',
        kind: 'ResourceClaimTemplate',
        metadata: { name: 'gpu' },
        spec: {
          spec: { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: deviceClass } }] } },
        },
      } as KubeObject,
      { namespace: ns },
    );
    const pods = client.resource<Pod>(Resources.pods);
    const podNames = Array.from({ length: PODS }, (_, i) => `logvol-pod-${i}`);
    await Promise.all(
      podNames.map((name) =>
        pods.create(
          {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name },
            spec: {
              // No node has this label: the scheduler leaves the pods alone.
              nodeSelector: { 'ts-kcm.test/no-such-node': 'true' },
              terminationGracePeriodSeconds: 0,
              containers: [
                { name: 'c', image: 'registry.k8s.io/pause:3.10', resources: { claims: [{ name: 'gpu' }] } },
              ],
              resourceClaims: [{ name: 'gpu', resourceClaimTemplateName: 'gpu' }],
            },
          },
          { namespace: ns },
        ),
      ),
    );
    const claimNames = await waitFor(
      async () => {
        const list = await pods.list({ namespace: ns });
        const names = list.items.map((p) => p.status?.resourceClaimStatuses?.[0]?.resourceClaimName);
        return names.length === PODS && names.every(Boolean) ? (names as string[]) : undefined;
      },
      { timeoutMs: 60_000, description: 'every pod to record its generated claim' },
    );
    // The pods finish: the controller deletes their generated claims.
    await Promise.all(
      podNames.map((name) =>
        pods.patch(
          name,
          { status: { phase: 'Succeeded' } },
          { type: 'merge', subresource: 'status', namespace: ns },
        ),
      ),
    );
    const claims = client.resource<ResourceClaim>(Resources.resourceClaims);
    await waitFor(
      async () =>
        (await claims.list({ namespace: ns })).items.filter((c) => !c.metadata.deletionTimestamp).length ===
        0,
      { timeoutMs: 60_000, description: 'the generated claims of the finished pods to be deleted' },
    );
    await Promise.all(podNames.map((name) => pods.delete(name, { namespace: ns })));

    // ---- Delete the ServiceCIDRs: the controller lets them go after its grace period.
    await Promise.all(cidrNames.map((n) => cidrs.delete(n)));
    await waitFor(
      async () => (await Promise.all(cidrNames.map((n) => gone(() => cidrs.get(n))))).every(Boolean),
      { timeoutMs: 90_000, intervalMs: 500, description: 'every ServiceCIDR to be deleted' },
    );

    expect(await kcm.stop()).toBe(0);
    const lines = kcm
      .output()
      .split('\n')
      .filter((l) => l.trim() !== '');
    const objects = [...cidrNames, ...podNames, ...claimNames];
    /** The name as a whole word: a pod's name is also the start of its claims' names. */
    const word = (name: string) => new RegExp(`(?<![\\w-])${name}(?![\\w-])`);
    const mentions = (name: string) => lines.filter((l) => word(name).test(l));
    const chatty = objects.filter((name) => mentions(name).length > 2);
    const unrelated = lines.filter((l) => !objects.some((name) => word(name).test(l)));
    const report = `ts-kcm printed ${lines.length} lines:\n${lines.slice(0, 40).join('\n')}`;
    expect({ chatty, perObject: chatty.map(mentions)[0] }).toEqual({ chatty: [], perObject: undefined });
    expect(unrelated.length <= 50 ? [] : [report]).toEqual([]);
    expect(lines.length).toBeLessThanOrEqual(2 * objects.length + 50);
    // Stricter for the claims: upstream logs nothing about them below -v 4 (errors aside).
    expect(claimNames.flatMap((n) => mentions(n).filter((l) => l.includes('"level":"info"')))).toEqual([]);
  }, 240_000);
});
