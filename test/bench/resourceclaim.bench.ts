/**
 * ResourceClaim: ts-kcm's resourceclaim-controller against upstream's resource-claim-controller
 * on a fresh control plane with the real kube-scheduler allocating. Before the controller
 * starts: Ready-looking Nodes (one per 100 pods), one ResourceSlice of 100 devices on each, a
 * DeviceClass, a ResourceClaimTemplate and N pods referencing it. Timed from the controller's
 * spawn: every generated claim exists and every pod has its claim status published; then
 * (after the scheduler has bound every pod) all pods are marked Succeeded — we play the
 * kubelet — and timed until every generated claim is deleted.
 */
import type { KubeObject, Pod, ResourceClaim } from '../../lib/api/index.js';
import { Resources, type KubeClient } from '../../lib/client/index.js';
import {
  inParallel,
  procFigures,
  firstEvent,
  spawnController,
  stopProcess,
  until,
  withControlPlane,
  type Contender,
  type Limits,
  type ProcFigures,
} from './controllers.bench.js';

/** Bound on each wait of a run; a figure not reached by then is NaN (n/a in the report). */
export const RC_WAIT_MS = 600_000;

export interface ResourceClaimRun extends ProcFigures {
  contender: Contender;
  n: number;
  limits: Limits;
  /** Spawn → every claim exists and every pod's resourceClaimStatuses is published. */
  publishedSeconds: number;
  /** Spawn → the first claim created (start-up and cache sync); absent in older results. */
  firstClaimSeconds?: number;
  /** Spawn → every pod bound by the scheduler (its claim allocated and reserved). */
  scheduledSeconds: number;
  /** All pods Succeeded → every generated claim deleted. */
  cleanupSeconds: number;
}

const NS = 'bench-rc';
const DRIVER = 'bench.ts-kcm.test';
const CLASS = 'bench-gpu';
const TEMPLATE = 'bench-gpu';
const PER_NODE = 100; // a ResourceSlice holds at most 128 devices
const NODE_LABEL = 'ts-kcm.bench/rc';

async function createFixtures(client: KubeClient, n: number): Promise<void> {
  await client
    .resource(Resources.namespaces)
    .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  const nodes = client.resource(Resources.nodes);
  const slices = client.resource(Resources.resourceSlices);
  const nodeNames = Array.from({ length: Math.ceil(n / PER_NODE) }, (_, i) => `bench-node-${i}`);
  await inParallel(nodeNames, 8, async (name) => {
    await nodes.create({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { [NODE_LABEL]: 'true' } },
    });
    const now = new Date().toISOString();
    const resources = { pods: '250', cpu: '64', memory: '256Gi' };
    await nodes.patch(
      name,
      {
        status: {
          capacity: resources,
          allocatable: resources,
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'played by the benchmark',
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
        },
      },
      { type: 'merge', subresource: 'status' },
    );
    await slices.create({
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceSlice',
      metadata: { name: `${name}-slice` },
      spec: {
        driver: DRIVER,
        nodeName: name,
        pool: { name, generation: 1, resourceSliceCount: 1 },
        devices: Array.from({ length: PER_NODE }, (_, i) => ({ name: `dev-${i}` })),
      },
    } as KubeObject);
  });
  await client.resource(Resources.deviceClasses).create({
    apiVersion: 'resource.k8s.io/v1',
    kind: 'DeviceClass',
    metadata: { name: CLASS },
    spec: { selectors: [{ cel: { expression: `device.driver == "${DRIVER}"` } }] },
  } as KubeObject);
  await client.resource(Resources.resourceClaimTemplates).create(
    {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceClaimTemplate',
      metadata: { name: TEMPLATE },
      spec: { spec: { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: CLASS } }] } } },
    } as KubeObject,
    { namespace: NS },
  );
  const pods = client.resource<Pod>(Resources.pods);
  const names = Array.from({ length: n }, (_, i) => `bench-${i}`);
  await inParallel(names, 32, async (name) => {
    await pods.create(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name },
        spec: {
          nodeSelector: { [NODE_LABEL]: 'true' },
          terminationGracePeriodSeconds: 0,
          containers: [
            { name: 'c', image: 'registry.k8s.io/pause:3.10', resources: { claims: [{ name: 'gpu' }] } },
          ],
          resourceClaims: [{ name: 'gpu', resourceClaimTemplateName: TEMPLATE }],
        },
      },
      { namespace: NS },
    );
  });
}

export async function resourceClaimRun(who: Contender, n: number, limits: Limits): Promise<ResourceClaimRun> {
  return withControlPlane(
    async (client, kubeconfig, dir) => {
      await createFixtures(client, n);
      const pods = client.resource<Pod>(Resources.pods);
      const claims = client.resource<ResourceClaim>(Resources.resourceClaims);
      const firstClaim = await firstEvent(claims, 'ADDED', NS);
      const start = performance.now();
      const child = spawnController(
        who,
        kubeconfig,
        { tsKcm: 'resourceclaim-controller', kcm: 'resource-claim-controller' },
        limits,
        dir,
      );
      try {
        const published = (p: Pod) =>
          (p.status?.resourceClaimStatuses ?? []).some((s) => s.resourceClaimName);
        const publishedSeconds = await until(start, RC_WAIT_MS, async () => {
          const [ps, cs] = await Promise.all([pods.list({ namespace: NS }), claims.list({ namespace: NS })]);
          return cs.items.length >= n && ps.items.filter(published).length === n;
        });
        const firstClaimSeconds = ((await firstClaim.stop()) - start) / 1000;
        const scheduledSeconds = await until(start, RC_WAIT_MS, async () => {
          const ps = await pods.list({ namespace: NS });
          return ps.items.filter((p) => p.spec?.nodeName).length === n;
        });
        const names = Array.from({ length: n }, (_, i) => `bench-${i}`);
        const cleanStart = performance.now();
        await inParallel(names, 32, async (name) => {
          await pods.patch(
            name,
            { status: { phase: 'Succeeded' } },
            { type: 'merge', subresource: 'status', namespace: NS },
          );
        });
        const cleanupSeconds = await until(cleanStart, RC_WAIT_MS, async () => {
          const cs = await claims.list({ namespace: NS });
          return cs.items.length === 0;
        });
        if (child.exitCode !== null) throw new Error(`${who} exited during the run (code ${child.exitCode})`);
        const figures = procFigures(child.pid!);
        return {
          contender: who,
          n,
          limits,
          publishedSeconds,
          firstClaimSeconds,
          scheduledSeconds,
          cleanupSeconds,
          ...figures,
        };
      } finally {
        await stopProcess(child);
      }
    },
    { scheduler: true },
  );
}
