/**
 * Fault suite for service-lb-ipam-controller (issue "nothing lost under faults"): ts-kcm runs
 * only that controller against a private kube-apiserver through the fault-injecting proxy
 * while the test churns LoadBalancer Services — creates, label changes, deletes and type
 * changes (LoadBalancer ↔ ClusterIP) — over a pool of 8 addresses with a 3 s release hold,
 * so the wanted Services outnumber the free addresses, released IPs are held and then handed
 * to the next Service. The invariants (test/support/lbipam-invariants.ts) are read from the
 * apiserver: a sampler checks every 200 ms that no IP is in two Services' status at once,
 * and once the faults stop, every IP has exactly its one IPAddress, no IPAddress is orphaned
 * or held past its hold, and every Service that wants an IP has one.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createKubeClient,
  isNotFound,
  loadKubeConfig,
  Resources,
  type KubeClient,
} from '../../lib/client/index.js';
import { ControlPlane } from '../../lib/controlplane/index.js';
import { installCRDs, readCRDs } from '../../lib/sdk/testing.js';
import {
  LB_CLASS,
  loadBalancerIPPools,
  POOL_ANNOTATION,
  type LBService,
  type LoadBalancerIPPool,
} from '../../controllers/lbipam/index.js';
import { startTsKcm, uniqueName, waitFor, type TsKcmProcess } from '../support/cluster.js';
import { FaultProxy, proxyControlPlane } from '../support/fault-proxy.js';
import { FULL, faultReport, scale } from '../support/fault-report.js';
import type { Violation } from '../support/invariants.js';
import { checkLBSnapshot, LBIngressSampler, readLBSnapshot } from '../support/lbipam-invariants.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const report = faultReport('faults-lbipam');

const CRD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'manifests', 'crds');
const POOL_SIZE = 8;
const HOLD_MS = 3_000;
/** Services alive at once during churn: more than the pool, so some always wait. */
const MAX_LIVE = 14;
/** Past a hold's end, the parent's requeue, queue wait and the delete through the faults. */
const SLACK_MS = 5_000;

const KCM_ARGS = [
  'run',
  '--controllers=service-lb-ipam-controller',
  '--leader-elect=false',
  '--metrics-bind-address=0',
  '--health-probe-bind-address=0',
  '--kube-api-qps=200',
  '--kube-api-burst=400',
  `--lb-ipam-release-hold=${HOLD_MS / 1000}s`,
];

type Kind = 'lb' | 'cip';

interface Churn {
  ns: string;
  /** The scenario's own pool of POOL_SIZE addresses, named by each Service's annotation. */
  pool: string;
  next: number;
  /** Live Services the test made, by name, and whether each is a LoadBalancer of our class now. */
  live: Map<string, Kind>;
  busy: Set<string>;
  counts: { created: number; deleted: number; changed: number; typeChanged: number };
}

function service(c: Churn, name: string, kind: Kind): LBService {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: c.ns, labels: { rev: '0' }, annotations: { [POOL_ANNOTATION]: c.pool } },
    spec: {
      ...(kind === 'lb'
        ? { type: 'LoadBalancer', loadBalancerClass: LB_CLASS, allocateLoadBalancerNodePorts: false }
        : { type: 'ClusterIP' }),
      ports: [{ port: 80, targetPort: 80 }],
    },
  };
}

describe('faults: service-lb-ipam-controller through a fault-injecting proxy', () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let proxy: FaultProxy;
  let kcm: TsKcmProcess;
  let proxied = '';
  let pools = 0;
  const logs: string[] = [];

  beforeAll(async () => {
    cp = await ControlPlane.start({ dir: mkdtempSync(join(tmpdir(), 'ts-kcm-faults-lbipam-')) });
    admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }), { qps: 500, burst: 1000 });
    await installCRDs(admin, readCRDs([CRD_DIR]), 'faults-lbipam');
    await waitFor(
      () =>
        admin
          .resource(loadBalancerIPPools)
          .list()
          .then(() => true),
      { description: 'pools listable' },
    );
    ({ proxy, kubeconfig: proxied } = await proxyControlPlane(cp, {
      maxLifetimeMs: (FULL ? 20 : 5) * 60_000,
    }));
    kcm = startTsKcm(KCM_ARGS, { kubeconfig: proxied });
    await kcm.waitForOutput(/starting workers/, 90_000);
  }, 300_000);

  afterAll(async () => {
    await kcm?.stop('SIGTERM');
    if (kcm) logs.push(kcm.output());
    writeFileSync(join(tmpdir(), 'ts-kcm-faults-lbipam.log'), logs.join('\n=== restart\n'));
    await proxy?.stop();
    await cp?.stop();
  }, 60_000);

  async function begin(label: string): Promise<{ c: Churn; sampler: LBIngressSampler }> {
    const ns = uniqueName(`fl-${label}`).slice(0, 40);
    await admin
      .resource(Resources.namespaces)
      .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    // One pool per scenario, so what an earlier scenario's Services still hold takes nothing from it.
    const pool = `faults-${label}`;
    const third = 250 + pools++;
    await admin.resource<LoadBalancerIPPool>(loadBalancerIPPools).create({
      apiVersion: 'lb.ts-kcm.io/v1alpha1',
      kind: 'LoadBalancerIPPool',
      metadata: { name: pool },
      spec: { addresses: [`192.168.${third}.10-192.168.${third}.${10 + POOL_SIZE - 1}`] },
    });
    const sampler = new LBIngressSampler(admin, ns);
    sampler.start();
    return {
      c: {
        ns,
        pool,
        next: 0,
        live: new Map(),
        busy: new Set(),
        counts: { created: 0, deleted: 0, changed: 0, typeChanged: 0 },
      },
      sampler,
    };
  }

  const services = () => admin.resource<LBService>(Resources.services);

  /** Picks a live Service no other lane is working on. */
  function pick(c: Churn, kind?: Kind): string | undefined {
    const names = [...c.live].filter(([n, k]) => !c.busy.has(n) && (!kind || k === kind)).map(([n]) => n);
    return names[Math.floor(Math.random() * names.length)];
  }

  async function remove(c: Churn, name: string): Promise<void> {
    c.live.delete(name);
    c.counts.deleted++;
    await services()
      .delete(name, { namespace: c.ns })
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
  }

  async function setKind(c: Churn, name: string, kind: Kind): Promise<void> {
    c.live.set(name, kind);
    c.counts.typeChanged++;
    // The apiserver drops the class, node ports and LB status itself when the type changes away.
    const spec =
      kind === 'lb' ? { type: 'LoadBalancer', loadBalancerClass: LB_CLASS } : { type: 'ClusterIP' };
    await services().patch(name, { spec }, { type: 'merge', namespace: c.ns });
  }

  /** `ops` random operations, `lanes` at a time, each lane pausing `pauseMs` between two. */
  async function churn(c: Churn, ops: number, lanes = 4, pauseMs = 200): Promise<void> {
    let left = ops;
    const one = async (): Promise<void> => {
      const r = Math.random();
      const target = c.live.size < 4 || (r < 0.35 && c.live.size < MAX_LIVE) ? undefined : pick(c);
      if (target === undefined) {
        const name = `s-${c.next++}`;
        const kind: Kind = Math.random() < 0.85 ? 'lb' : 'cip';
        c.live.set(name, kind);
        c.busy.add(name); // no other lane touches it before it exists
        c.counts.created++;
        try {
          await services().create(service(c, name, kind), { namespace: c.ns });
        } finally {
          c.busy.delete(name);
        }
        return;
      }
      c.busy.add(target);
      try {
        if (r < 0.6) await remove(c, target);
        else if (r < 0.8) await setKind(c, target, c.live.get(target) === 'lb' ? 'cip' : 'lb');
        else {
          c.counts.changed++;
          await services().patch(
            target,
            { metadata: { labels: { rev: String(c.counts.changed) } } },
            { type: 'merge', namespace: c.ns },
          );
        }
      } finally {
        c.busy.delete(target);
      }
    };
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        while (left-- > 0) {
          await one();
          await sleep(pauseMs);
        }
      }),
    );
    // Leave no more wanted Services than the pool has addresses: then every one must get an IP.
    for (
      let name = pick(c, 'lb');
      [...c.live.values()].filter((k) => k === 'lb').length > POOL_SIZE;
      name = pick(c, 'lb')
    )
      if (name) await remove(c, name);
  }

  /** Waits for the final-state invariants (or the timeout); reports and returns every violation. */
  async function converge(
    c: Churn,
    sampler: LBIngressSampler,
    label: string,
    faults: number,
    lastFaultAt: number,
    note: string,
  ): Promise<Violation[]> {
    let violations: Violation[] = [];
    const check = async (): Promise<Violation[]> => {
      const snap = await readLBSnapshot(admin, c.ns);
      const out = checkLBSnapshot(snap, { holdMs: HOLD_MS, slackMs: SLACK_MS, prefix: `${c.ns}/` });
      for (const s of snap.services) {
        const name = s.key.slice(c.ns.length + 1);
        if (!c.live.has(name))
          out.push({
            object: s.key,
            invariant: 'a deleted Service is gone (finalizer removed)',
            detail: 'still there',
          });
      }
      for (const name of c.live.keys())
        if (!snap.services.some((s) => s.key === `${c.ns}/${name}`))
          out.push({ object: `${c.ns}/${name}`, invariant: 'a live Service exists', detail: 'missing' });
      return out;
    };
    const converged = await waitFor(
      async () => {
        violations = await check();
        return violations.length === 0 ? Date.now() : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 500, description: `${label}: invariants` },
    ).catch(() => undefined);
    if (!converged) process.stderr.write(`faults[${label}]: no convergence; ${kcm.describe()}`);
    const shared = await sampler.stop();
    const all = [...violations, ...shared];
    const { created, deleted, changed, typeChanged } = c.counts;
    report.record({
      scenario: label,
      created,
      deleted,
      faults,
      recoveryMs: converged ? converged - lastFaultAt : null,
      violations: all.length,
      note:
        `${note}; ${changed} label changes, ${typeChanged} type changes; pool of ${POOL_SIZE}, hold ${HOLD_MS / 1000} s: ` +
        `${sampler.reused()} IPs reused by another Service, up to ${sampler.maxWithIP} Services with an IP at once; ` +
        `${sampler.samples} ingress samples`,
    });
    process.stderr.write(
      `faults[${label}]: ${JSON.stringify(c.counts)}, faults ${faults}, recovery ${converged ? converged - lastFaultAt : 'never'} ms, ` +
        `reused ${sampler.reused()}, samples ${sampler.samples}, violations ${all.length}, proxy ${JSON.stringify(proxy.stats)}\n` +
        all
          .slice(0, 20)
          .map((v) => `  ${v.object}: ${v.invariant} (${v.detail})\n`)
          .join(''),
    );
    return all;
  }

  it('watch cuts every 2-5 s and resets mid-line during Service churn: no IP shared, none orphaned, none missing', async () => {
    const { c, sampler } = await begin('cuts');
    const before = { ...proxy.stats };
    proxy.cutEvery(2_000, 5_000);
    proxy.latency(0, 15);
    const resets = setInterval(() => proxy.resetMidStream(), 3_000);
    try {
      await churn(c, scale(240));
      await sleep(6_000); // keep faulting while the controller works through holds and the backlog
    } finally {
      clearInterval(resets);
      proxy.stopCutting();
      proxy.latency(0, 0);
    }
    const faults = proxy.stats.cuts - before.cuts + (proxy.stats.resets - before.resets);
    expect(faults).toBeGreaterThan(0);
    const violations = await converge(
      c,
      sampler,
      'lbipam-cuts',
      faults,
      Date.now(),
      `${proxy.stats.cuts - before.cuts} cuts, ${proxy.stats.resets - before.resets} resets`,
    );
    expect(violations).toEqual([]);
    expect(c.counts.typeChanged).toBeGreaterThan(0);
  }, 300_000);

  it('ts-kcm SIGKILLed mid-churn and restarted: state rebuilt from the IPAddresses, nothing shared or leaked', async () => {
    const { c, sampler } = await begin('kill');
    const rounds = FULL ? 5 : 1;
    let lastKillAt = Date.now();
    for (let round = 0; round < rounds; round++) {
      const churning = churn(c, scale(60) / rounds);
      await sleep(2_000);
      await kcm.stop('SIGKILL');
      logs.push(kcm.output());
      lastKillAt = Date.now();
      kcm = startTsKcm(KCM_ARGS, { kubeconfig: proxied });
      await churning;
      await kcm.waitForOutput(/starting workers/, 90_000);
    }
    const violations = await converge(
      c,
      sampler,
      'lbipam-kill',
      rounds,
      lastKillAt,
      `${rounds} SIGKILL + restart of ts-kcm during churn`,
    );
    expect(violations).toEqual([]);
  }, 300_000);
});
