/**
 * The fault suite for the resourceclaim-controller (issue 14): ts-kcm runs only that
 * controller against a private kube-apiserver, through the fault-injecting proxy, while the
 * test churns pods with claim templates and plays the scheduler (it adds the delete-protection
 * finalizer, then writes status.allocation + reservedFor and binds the pod) and the kubelet
 * (it writes the pod phase). The private control plane also runs kube-controller-manager's
 * garbage collector, which in a real cluster deletes the generated claims of deleted pods.
 *
 * Scenarios: watch cuts every 2-5 s during churn; and concurrent writers on the same claims
 * (labels written by update with resourceVersion, the "scheduler" adding reservations to
 * shared claims while ts-kcm removes others), so ts-kcm's resourceVersion-guarded writes hit
 * 409 Conflict — counted from ts-kcm's own rest_client_requests_total{code="409"}.
 * Invariants: test/support/claim-invariants.ts (final state and the watched history).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject, Pod, ResourceClaim, ResourceClaimTemplate } from '../../lib/api/index.js';
import {
  createKubeClient,
  isConflict,
  isNotFound,
  loadKubeConfig,
  Resources,
  type KubeClient,
} from '../../lib/client/index.js';
import { ControlPlane } from '../../lib/controlplane/index.js';
import { ClaimHistory, checkClaims, type Violation } from '../support/claim-invariants.js';
import { startTsKcm, uniqueName, waitFor, type TsKcmProcess } from '../support/cluster.js';
import { FaultProxy, proxyControlPlane } from '../support/fault-proxy.js';
import { FULL, faultReport, scale } from '../support/fault-report.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const report = faultReport('faults-claims');

const FINALIZER = 'resource.kubernetes.io/delete-protection';
const DRIVER = 'faults.example.com';
const CLASS = 'faults-claims';
const NODE = 'faults-claims-node';

const KCM_ARGS = [
  'run',
  '--controllers=resourceclaim-controller',
  '--leader-elect=false',
  '--metrics-bind-address=127.0.0.1:0',
  '--health-probe-bind-address=0',
  '--kube-api-qps=200',
  '--kube-api-burst=400',
];

/** What happens to a pod after it was scheduled and ran; index = pod number % length. */
const FATES = [
  'succeed+delete',
  'fail',
  'succeed',
  'delete-running',
  'fail+delete',
  'succeed+delete',
  'keep-running',
] as const;

interface Scenario {
  ns: string;
  history: ClaimHistory;
  pods: number;
  deleted: number;
  /** The test's own 409s (scheduler and label writers), as opposed to ts-kcm's. */
  writerConflicts: number;
  labelWrites: number;
  statusWrites: number;
  startedAt: number;
  /** When the churn's last pod write returned. */
  churnEndAt: number;
}

describe('faults: resourceclaim-controller through a fault-injecting proxy', () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let proxy: FaultProxy;
  let kcm: TsKcmProcess;
  let metricsURL = '';

  const pods = () => admin.resource<Pod>(Resources.pods);
  const claims = () => admin.resource<ResourceClaim>(Resources.resourceClaims);

  beforeAll(async () => {
    cp = await ControlPlane.start({
      dir: mkdtempSync(join(tmpdir(), 'ts-kcm-faults-claims-')),
      kubeControllerManager: 'garbagecollector',
    });
    admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }), { qps: 500, burst: 1000 });
    let proxied: string;
    ({ proxy, kubeconfig: proxied } = await proxyControlPlane(cp, {
      maxLifetimeMs: (FULL ? 20 : 5) * 60_000,
    }));
    await admin.resource(Resources.deviceClasses).create({
      apiVersion: 'resource.k8s.io/v1',
      kind: 'DeviceClass',
      metadata: { name: CLASS },
      spec: { selectors: [{ cel: { expression: `device.driver == "${DRIVER}"` } }] },
    } as KubeObject);
    kcm = startTsKcm(KCM_ARGS, { kubeconfig: proxied });
    const m = await kcm.waitForOutput(/"address":"([^"]+)"[^\n]*"message":"serving metrics"/, 90_000);
    metricsURL = `http://${m[1]}/metrics`;
    await kcm.waitForOutput(/starting workers/, 90_000);
  }, 240_000);

  afterAll(async () => {
    await kcm?.stop('SIGTERM');
    if (kcm) writeFileSync(join(tmpdir(), 'ts-kcm-faults-claims.log'), kcm.output());
    await proxy?.stop();
    await cp?.stop();
  }, 60_000);

  /** ts-kcm's 409 answers so far (rest_client_requests_total summed over method and host). */
  async function kcmConflicts(): Promise<number> {
    const text = await (await fetch(metricsURL)).text();
    let n = 0;
    for (const line of text.split('\n'))
      if (line.startsWith('rest_client_requests_total{') && line.includes('code="409"'))
        n += Number(line.slice(line.lastIndexOf(' ') + 1));
    return n;
  }

  async function begin(label: string): Promise<Scenario> {
    const ns = uniqueName(`fc-${label}`).slice(0, 40);
    await admin
      .resource(Resources.namespaces)
      .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await admin.resource<ResourceClaimTemplate>(Resources.resourceClaimTemplates).create(
      {
        apiVersion: 'resource.k8s.io/v1',
        kind: 'ResourceClaimTemplate',
        metadata: { name: 'tpl' },
        spec: { spec: claimSpec() },
      },
      { namespace: ns },
    );
    const history = new ClaimHistory(admin, ns);
    await history.start();
    return {
      ns,
      history,
      pods: 0,
      deleted: 0,
      writerConflicts: 0,
      labelWrites: 0,
      statusWrites: 0,
      startedAt: Date.now(),
      churnEndAt: 0,
    };
  }

  function claimSpec(): Record<string, unknown> {
    return { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: CLASS } }] } };
  }

  /** A get-modify-update with the resourceVersion, retried on 409 (counted as the writer's). */
  async function updateClaim(
    s: Scenario,
    name: string,
    change: (c: ResourceClaim) => ResourceClaim | undefined,
    subresource?: 'status',
  ): Promise<ResourceClaim | undefined> {
    for (let attempt = 0; attempt < 50; attempt++) {
      let cur: ResourceClaim;
      try {
        cur = await claims().get(name, s.ns);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
      const next = change(structuredClone(cur));
      if (!next) return cur;
      try {
        return await claims().update(next, { namespace: s.ns, subresource });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        if (!isConflict(err)) throw err;
        s.writerConflicts++;
      }
    }
    throw new Error(`updateClaim ${name}: 50 conflicts in a row`);
  }

  /**
   * Play the scheduler for one pod and claim: the finalizer first (as kube-scheduler does,
   * so an allocated claim cannot vanish), then allocation (if none) + the reservation.
   */
  async function schedule(s: Scenario, claimName: string, pod: Pod): Promise<void> {
    await updateClaim(s, claimName, (c) => {
      if (c.metadata.finalizers?.includes(FINALIZER)) return undefined;
      c.metadata.finalizers = [...(c.metadata.finalizers ?? []), FINALIZER];
      return c;
    });
    const uid = pod.metadata.uid ?? '';
    const done = await updateClaim(
      s,
      claimName,
      (c) => {
        // The controller may have deallocated (and dropped the finalizer) in between: start over.
        if (!c.metadata.finalizers?.includes(FINALIZER)) throw new Error('finalizer gone');
        if (c.status?.reservedFor?.some((r) => r.uid === uid)) return undefined;
        c.status = {
          ...(c.status ?? {}),
          allocation: c.status?.allocation ?? {
            devices: {
              results: [{ request: 'gpu', driver: DRIVER, pool: 'pool', device: `dev-${claimName}` }],
            },
          },
          reservedFor: [
            ...(c.status?.reservedFor ?? []),
            { resource: 'pods', name: pod.metadata.name ?? '', uid },
          ],
        };
        s.statusWrites++;
        return c;
      },
      'status',
    ).catch((err: unknown) => {
      if (err instanceof Error && err.message === 'finalizer gone') return 'again' as const;
      throw err;
    });
    if (done === 'again') return schedule(s, claimName, pod);
    await pods().create(
      {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name: pod.metadata.name },
        target: { apiVersion: 'v1', kind: 'Node', name: NODE },
      } as unknown as Pod,
      { namespace: s.ns, subresource: 'binding' },
    );
  }

  const setPhase = (s: Scenario, name: string, phase: 'Running' | 'Succeeded' | 'Failed') =>
    pods().patch(name, { status: { phase } }, { type: 'merge', subresource: 'status', namespace: s.ns });

  /** One pod's life: create, its claim generated, scheduled, run, then its fate. */
  async function lifecycle(s: Scenario, k: number, shared?: string): Promise<void> {
    const name = `p-${k}`;
    const pod = await pods().create(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name },
        spec: {
          nodeSelector: { 'ts-kcm.test/no-such-node': 'true' }, // only the test binds it
          terminationGracePeriodSeconds: 0,
          containers: [
            { name: 'c', image: 'registry.k8s.io/pause:3.10', resources: { claims: [{ name: 'gpu' }] } },
          ],
          resourceClaims: [
            shared
              ? { name: 'gpu', resourceClaimName: shared }
              : { name: 'gpu', resourceClaimTemplateName: 'tpl' },
          ],
        },
      },
      { namespace: s.ns },
    );
    s.pods++;
    const claimName =
      shared ??
      (await waitFor(
        async () =>
          (await pods().get(name, s.ns)).status?.resourceClaimStatuses?.find((e) => e.name === 'gpu')
            ?.resourceClaimName,
        { timeoutMs: 120_000, intervalMs: 100, description: `pod ${s.ns}/${name}: its claim generated` },
      ));
    await schedule(s, claimName, pod);
    await setPhase(s, name, 'Running');
    const fate = FATES[k % FATES.length] as (typeof FATES)[number];
    if (fate === 'keep-running') return;
    if (fate !== 'delete-running')
      await setPhase(s, name, fate.startsWith('succeed') ? 'Succeeded' : 'Failed');
    if (fate === 'delete-running' || fate.endsWith('+delete')) {
      await pods().delete(name, { namespace: s.ns, gracePeriodSeconds: 0 });
      s.deleted++;
    }
  }

  /** `n` pod lives, `concurrency` at a time; every `sharedEvery`-th pod uses one of `shared`. */
  async function churn(s: Scenario, n: number, shared: string[] = [], concurrency = 10): Promise<void> {
    const work = Array.from({ length: n }, (_, k) => s.pods + k);
    const lanes = Array.from({ length: concurrency }, async () => {
      for (let k = work.shift(); k !== undefined; k = work.shift())
        await lifecycle(s, k, shared.length > 0 && k % 2 === 1 ? shared[k % shared.length] : undefined);
    });
    await Promise.all(lanes);
    s.churnEndAt = Date.now();
  }

  async function createShared(s: Scenario, count: number): Promise<string[]> {
    const names = Array.from({ length: count }, (_, i) => `shared-${i}`);
    for (const name of names)
      await claims().create(
        { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaim', metadata: { name }, spec: claimSpec() },
        { namespace: s.ns },
      );
    return names;
  }

  /** Waits for the final invariants, then judges the watched history; records the scenario. */
  async function converge(
    s: Scenario,
    label: string,
    countFaults: () => number | Promise<number>,
    lastFaultAt: number,
    note: string,
  ): Promise<{ violations: Violation[]; faults: number }> {
    let final: Violation[] = [];
    const ignore = new Set(['history-sentinel']);
    const converged = await waitFor(
      async () => {
        final = await checkClaims(admin, s.ns, ignore);
        return final.length === 0 ? Date.now() : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500, description: `${label}: claim invariants` },
    ).catch(() => undefined);
    if (!converged) process.stderr.write(`faults[${label}]: no convergence; ${kcm.describe()}`);
    const faults = await countFaults();
    await s.history.sync();
    await s.history.stop();
    const h = s.history.analyze();
    const all = [...final, ...h.violations];
    report.record({
      scenario: label,
      created: s.pods,
      deleted: s.deleted,
      faults,
      recoveryMs: converged ? converged - lastFaultAt : null,
      violations: all.length,
      note:
        `${note}; objects are pods; churn ${((s.churnEndAt - s.startedAt) / 1000).toFixed(1)} s, invariants held ` +
        `${converged ? `${((converged - s.churnEndAt) / 1000).toFixed(1)} s after its last write` : 'never'}; ` +
        `${h.added} reservations added, ${h.removed} removed, ` +
        `${h.deallocated} deallocations watched` +
        (s.history.gaps ? `, ${s.history.gaps} watch gaps (410)` : ''),
    });
    process.stderr.write(
      `faults[${label}]: pods ${s.pods}, faults ${faults}, recovery ${converged ? converged - lastFaultAt : 'never'} ms, ` +
        `history ${JSON.stringify({ ...h, violations: h.violations.length, gaps: s.history.gaps })}, ` +
        `writers ${JSON.stringify({ conflicts: s.writerConflicts, labels: s.labelWrites, status: s.statusWrites })}, ` +
        `violations ${all.length}${all.length ? ` ${JSON.stringify(all.slice(0, 5))}` : ''}\n`,
    );
    return { violations: all, faults };
  }

  it('watch cuts every 2-5 s during pod/claim churn: every claim released, deallocated and deleted once', async () => {
    const s = await begin('cuts');
    const shared = await createShared(s, 3);
    const before = proxy.stats.cuts;
    proxy.cutEvery(2_000, 5_000);
    try {
      await churn(s, scale(40), shared);
      await sleep(4_000); // keep cutting while the controller works through the backlog
      // A fast churn can end before the first cut (2-5 s after the start): keep cutting until
      // two cuts have landed, so the scenario always injects what it claims to.
      await waitFor(() => proxy.stats.cuts - before >= 2, {
        timeoutMs: 30_000,
        intervalMs: 100,
        description: 'two connection cuts',
      });
    } finally {
      proxy.stopCutting();
    }
    const faults = proxy.stats.cuts - before;
    expect(faults).toBeGreaterThan(0);
    const result = await converge(s, 'claims-cuts', () => faults, Date.now(), 'faults = connections cut');
    expect(result.violations).toEqual([]);
  }, 300_000);

  it('concurrent writers on the same claims: ts-kcm hits 409 Conflict, retries from fresh state, loses nothing', async () => {
    const s = await begin('conflicts');
    const shared = await createShared(s, 2);
    const conflictsBefore = await kcmConflicts();
    let stop = false;
    // Label writers: get + update with the resourceVersion on every claim of the namespace, in a loop.
    const labeller = async (id: number): Promise<void> => {
      for (let round = 0; !stop; round++) {
        const list = await claims().list({ namespace: s.ns });
        for (const c of list.items) {
          if (stop) break;
          if (c.metadata.deletionTimestamp || c.metadata.name === 'history-sentinel') continue;
          c.metadata.labels = { ...(c.metadata.labels ?? {}), [`writer-${id}`]: String(round) };
          try {
            await claims().update(c, { namespace: s.ns }); // the listed (maybe stale) resourceVersion
            s.labelWrites++;
          } catch (err) {
            if (isConflict(err)) s.writerConflicts++;
            else if (!isNotFound(err)) throw err;
          }
        }
        await sleep(20);
      }
    };
    const writers = [labeller(1), labeller(2)];
    try {
      await churn(s, scale(40), shared);
      await sleep(3_000);
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    const lastFaultAt = Date.now();
    // ts-kcm's own 409s, counted once the invariants hold (its last retries are done then).
    const { violations, faults } = await converge(
      s,
      'claims-conflicts',
      async () => (await kcmConflicts()) - conflictsBefore,
      lastFaultAt,
      `faults = 409s ts-kcm got; the test's writers made ${s.labelWrites} label updates and hit ${s.writerConflicts} 409s themselves`,
    );
    expect(faults).toBeGreaterThan(0);
    expect(violations).toEqual([]);
  }, 300_000);
});
