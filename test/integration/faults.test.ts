/**
 * The short fault suite (issue "nothing lost under faults"): ts-kcm's service-cidr-controller
 * talks to a private kube-apiserver through the fault-injecting proxy while the test churns
 * ServiceCIDRs; afterwards the invariants are read straight from the apiserver.
 *
 * Each scenario logs a one-line report: objects churned, faults injected, time to converge
 * after the last fault, and violations (must be 0). A private control plane keeps every
 * other test's ts-kcm away, so what converges is the controller under faults alone.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lease, ServiceCIDR } from '../../lib/api/index.js';
import { createKubeClient, loadKubeConfig, Resources, type KubeClient } from '../../lib/client/index.js';
import { ControlPlane } from '../../lib/controlplane/index.js';
import { DefaultSharedIndexInformer, DeletedFinalStateUnknown } from '../../lib/informer/index.js';
import { newRegistry } from '../../lib/metrics/index.js';
import { startTsKcm, uniqueName, waitFor, type TsKcmProcess } from '../support/cluster.js';
import { FaultProxy, proxyControlPlane } from '../support/fault-proxy.js';
import { FULL, faultReport, scale } from '../support/fault-report.js';
import { HttpFaultProxy, type HttpFault } from '../support/http-fault-proxy.js';
import { checkServiceCIDRs, ServiceCIDRSampler, type Violation } from '../support/invariants.js';
import { checkLeaderWrites, parseAuditLog, WRITE_VERBS, type LeaseRecord } from '../support/leader-audit.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const report = faultReport('faults');

const KCM_ARGS = [
  'run',
  '--controllers=service-cidr-controller',
  '--leader-elect=false',
  '--metrics-bind-address=0',
  '--health-probe-bind-address=0',
  '--kube-api-qps=200',
  '--kube-api-burst=400',
];

interface Scenario {
  prefix: string;
  /** Next object index: names stay unique across several churns in one scenario. */
  next: number;
  live: Set<string>;
  deleted: Set<string>;
  sampler: ServiceCIDRSampler;
}

function serviceCIDR(name: string, i: number): ServiceCIDR {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'ServiceCIDR',
    metadata: { name },
    spec: { cidrs: [`10.${100 + (i >> 8)}.${i & 255}.0/28`] },
  };
}

describe('faults: service-cidr-controller through a fault-injecting proxy', () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let proxy: FaultProxy;
  let kcm: TsKcmProcess;
  let counter = 0;
  let proxiedKubeconfig = '';

  beforeAll(async () => {
    cp = await ControlPlane.start({ dir: mkdtempSync(join(tmpdir(), 'ts-kcm-faults-')) });
    admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }), { qps: 500, burst: 1000 });
    ({ proxy, kubeconfig: proxiedKubeconfig } = await proxyControlPlane(cp, {
      maxLifetimeMs: (FULL ? 30 : 8) * 60_000,
    }));
    kcm = startTsKcm(KCM_ARGS, { kubeconfig: proxiedKubeconfig });
    await kcm.waitForOutput(/starting workers/, 90_000);
  }, 300_000);

  afterAll(async () => {
    await kcm?.stop('SIGTERM');
    if (kcm) writeFileSync(join(tmpdir(), 'ts-kcm-faults.log'), kcm.output());
    await proxy?.stop();
    await cp?.stop();
  }, 60_000);

  function begin(label: string): Scenario {
    const prefix = uniqueName(`f-${label}`).slice(0, 30);
    const sampler = new ServiceCIDRSampler(admin, prefix);
    sampler.start();
    return { prefix, next: 0, live: new Set(), deleted: new Set(), sampler };
  }

  /** Creates `creates` ServiceCIDRs, deletes every third one, `concurrency` at a time. */
  async function churn(s: Scenario, creates: number, concurrency = 10): Promise<void> {
    const names: string[] = [];
    const work = Array.from({ length: creates }, (_, k) => s.next + k);
    s.next += creates;
    const runOne = async (k: number): Promise<void> => {
      const name = `${s.prefix}-${k}`;
      await admin.resource<ServiceCIDR>(Resources.serviceCIDRs).create(serviceCIDR(name, counter++ % 4096));
      names.push(name);
      s.live.add(name);
      if (k % 3 === 2) {
        const victim = names[Math.floor(Math.random() * names.length)] as string;
        if (s.live.delete(victim)) {
          s.deleted.add(victim);
          await admin.resource(Resources.serviceCIDRs).delete(victim);
        }
      }
    };
    const lanes = Array.from({ length: concurrency }, async () => {
      for (let k = work.shift(); k !== undefined; k = work.shift()) await runOne(k);
    });
    await Promise.all(lanes);
  }

  /** Waits until the invariants hold (or the timeout), then reports and returns violations. */
  async function converge(
    s: Scenario,
    label: string,
    faults: number,
    lastFaultAt: number,
    controller: TsKcmProcess = kcm,
  ): Promise<Violation[]> {
    let violations: Violation[] = [];
    const converged = await waitFor(
      async () => {
        violations = await checkServiceCIDRs(admin, s.prefix, s.live, s.deleted);
        return violations.length === 0 ? Date.now() : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 500, description: `${label}: invariants` },
    ).catch(() => undefined);
    if (!converged) process.stderr.write(`faults[${label}]: no convergence; ${controller.describe()}`);
    await s.sampler.stop();
    const all = [...violations, ...s.sampler.earlyReleases()];
    if (faults > 0)
      report.record({
        scenario: label,
        created: s.live.size + s.deleted.size,
        deleted: s.deleted.size,
        faults,
        recoveryMs: converged ? converged - lastFaultAt : null,
        violations: all.length,
      });
    process.stderr.write(
      `faults[${label}]: created ${s.live.size + s.deleted.size}, deleted ${s.deleted.size}, ` +
        `faults ${faults}, recovery ${converged ? converged - lastFaultAt : 'never'} ms, ` +
        `violations ${all.length}, proxy ${JSON.stringify(proxy.stats)}\n`,
    );
    return all;
  }

  it('watch cuts every 2-5 s, resets mid-line and latency jitter lose nothing', async () => {
    const s = begin('cuts');
    const before = { ...proxy.stats };
    proxy.cutEvery(2_000, 5_000);
    proxy.latency(0, 15);
    const resets = setInterval(() => proxy.resetMidStream(), 3_000);
    try {
      await churn(s, scale(240));
      await sleep(6_000); // keep faulting while the controller works through the backlog
    } finally {
      clearInterval(resets);
      proxy.stopCutting();
      proxy.latency(0, 0);
    }
    const faults = proxy.stats.cuts - before.cuts + (proxy.stats.resets - before.resets);
    expect(faults).toBeGreaterThan(0);
    expect(await converge(s, 'cuts', faults, Date.now())).toEqual([]);
  }, 300_000);

  it('refused connections for 5 s after a cut: recovers and loses nothing', async () => {
    const s = begin('refuse');
    const before = proxy.stats.refused;
    // Keep refusing until ts-kcm has tried to reconnect at least once (its backoff after the
    // earlier scenario's cuts may be longer than one window), then let the last 5 s run out.
    proxy.refuse(5_000);
    const refusedOnce = waitFor(
      () => {
        if (proxy.stats.refused > before) return true;
        proxy.refuse(5_000);
        return false;
      },
      { timeoutMs: 90_000, intervalMs: 250, description: 'a refused reconnect' },
    );
    proxy.cutAll();
    await churn(s, scale(60));
    await refusedOnce;
    await sleep(5_000);
    expect(proxy.stats.refused - before).toBeGreaterThan(0);
    expect(await converge(s, 'refuse', proxy.stats.refused - before, Date.now())).toEqual([]);
  }, 180_000);

  it('half-open stall of every open connection: a ServiceCIDR created 20 s in is reconciled within 45 s of the stall', async () => {
    const s = begin('stall');
    await churn(s, 2); // creates only (no deletes, so no 10 s grace to wait out)
    await converge(s, 'stall-warmup', 0, Date.now()); // pooled sockets and watches are all in use now
    const stallAt = Date.now();
    const stalled = proxy.stall(120_000); // far longer than any guard: only a new connection helps
    expect(stalled).toBeGreaterThan(0);
    await sleep(20_000);
    const name = `${s.prefix}-late`;
    await admin.resource<ServiceCIDR>(Resources.serviceCIDRs).create(serviceCIDR(name, 4000));
    const reconciledAt = await waitFor(
      async () => {
        const sc = await admin.resource<ServiceCIDR>(Resources.serviceCIDRs).get(name);
        const ready = sc.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
        return ready && sc.metadata.finalizers?.length ? Date.now() : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 250, description: 'the late ServiceCIDR reconciled' },
    );
    const recoveryMs = reconciledAt - stallAt;
    process.stderr.write(
      `faults[stall]: stalled ${stalled} connections, late ServiceCIDR reconciled ${recoveryMs} ms after the stall began\n`,
    );
    report.record({
      scenario: 'stall',
      faults: stalled,
      recoveryMs,
      violations: 0,
      note: 'ServiceCIDR created 20 s into the stall; recovery counted from the stall start',
    });
    // Generous for a busy 2-core machine; the old 150 s inactivity guard took about 160 s.
    expect(recoveryMs).toBeLessThan(100_000);
  }, 240_000);

  it('kube-apiserver SIGKILL + restart during churn loses nothing', async () => {
    const s = begin('apiserver-kill');
    await churn(s, scale(60));
    await cp.restartApiserver({ graceMs: 0 });
    const restartedAt = Date.now();
    await churn(s, scale(60));
    expect(await converge(s, 'apiserver-kill', 1, restartedAt)).toEqual([]);
  }, 300_000);

  it('etcd SIGKILL + restart during churn loses nothing', async () => {
    const s = begin('etcd-kill');
    await churn(s, scale(60));
    await cp.stopComponent('etcd', { graceMs: 0 });
    await sleep(2_000);
    await cp.startComponent('etcd');
    const restartedAt = Date.now();
    // The apiserver reconnects to etcd by itself; give writes a moment before churning on.
    await waitFor(async () => (await admin.requestRaw('GET', '/readyz')).status === 200, {
      timeoutMs: 60_000,
      description: 'apiserver ready after etcd restart',
    });
    await churn(s, scale(60));
    expect(await converge(s, 'etcd-kill', 1, restartedAt)).toEqual([]);
  }, 300_000);

  it('odd objects the apiserver accepts (IPv6 on an IPv4 cluster, dual-stack, 200 KB annotation, 100 labels): reconciled and released', async () => {
    const odd: [string, string[], Record<string, string>, Record<string, string>][] = [
      ['ipv6', ['fd00:10:96::/112'], {}, {}],
      ['dual', ['10.250.0.0/28', 'fd00:10:97::/112'], {}, {}],
      ['annotation', ['10.251.0.0/28'], { 'example.com/blob': 'x'.repeat(200_000) }, {}],
      [
        'labels',
        ['10.252.0.0/28'],
        {},
        Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`l${i}.example.com/k`, `v${i}`])),
      ],
    ];
    const prefix = uniqueName('f-odd').slice(0, 30);
    const scs = admin.resource<ServiceCIDR>(Resources.serviceCIDRs);
    const names = new Set(odd.map(([what]) => `${prefix}-${what}`));
    // All at once: each release waits out the 10 s grace period, so a row at a time costs 40 s.
    await Promise.all(
      odd.map(([what, cidrs, annotations, labels]) =>
        scs.create({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'ServiceCIDR',
          metadata: { name: `${prefix}-${what}`, annotations, labels },
          spec: { cidrs },
        }),
      ),
    );
    const check = (live: Set<string>, gone: Set<string>) => async () =>
      (await checkServiceCIDRs(admin, prefix, live, gone)).length === 0;
    await waitFor(check(names, new Set()), {
      timeoutMs: 60_000,
      intervalMs: 250,
      description: 'odd objects reconciled',
    });
    await Promise.all([...names].map((name) => scs.delete(name)));
    await waitFor(check(new Set(), names), {
      timeoutMs: 60_000,
      intervalMs: 250,
      description: 'odd objects released',
    });
    expect(kcm.proc.exitCode).toBeNull();
  }, 150_000);

  /** Compacts etcd at its current revision (etcd's JSON gateway: no etcdctl needed). */
  async function compactEtcd(): Promise<number> {
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${cp.etcdClientURL}${path}`, { method: 'POST', body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as { header?: { revision?: string } };
    };
    const range = await post('/v3/kv/range', { key: Buffer.from('/').toString('base64'), count_only: true });
    const revision = Number(range.header?.revision);
    await post('/v3/kv/compaction', { revision, physical: true });
    return revision;
  }

  /** SIGKILL + restart (ControlPlane retries while the old port is still bound), then ready. */
  async function restartApiserver(): Promise<void> {
    await cp.restartApiserver({ graceMs: 0 });
    await waitFor(async () => (await admin.requestRaw('GET', '/readyz')).status === 200, {
      timeoutMs: 60_000,
      description: 'apiserver ready after restart',
    });
  }

  it('repeated etcd compaction forcing 410 Gone: relists, tombstones for missed deletions, nothing lost', async () => {
    const s = begin('compaction');
    const rounds = FULL ? 6 : 1;
    // An informer of our own on ConfigMaps, through the same proxy as ts-kcm, shows the
    // tombstones directly; ts-kcm's ServiceCIDRs show that the controller loses nothing.
    const ns = uniqueName('f-compaction');
    await admin
      .resource(Resources.namespaces)
      .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    const viaProxy = createKubeClient(loadKubeConfig({ kubeconfig: proxiedKubeconfig }), { qps: -1 });
    const informer = new DefaultSharedIndexInformer(
      Resources.configmaps,
      viaProxy.resource(Resources.configmaps),
      {
        namespace: ns,
        registry: newRegistry(),
      },
    );
    const seen = { adds: new Set<string>(), deletes: [] as string[], tombstones: [] as string[] };
    informer.addEventHandler({
      onAdd: (o) => void seen.adds.add(o.metadata.name ?? ''),
      onUpdate: () => {},
      onDelete: (o) => {
        if (o instanceof DeletedFinalStateUnknown) seen.tombstones.push(o.obj.metadata.name ?? '');
        else seen.deletes.push(o.metadata.name ?? '');
      },
    });
    const ac = new AbortController();
    const running = informer.run(ac.signal);
    const cms = admin.resource(Resources.configmaps);
    const cmLive = new Set<string>();
    const cmDeleted = new Set<string>();
    let cmNext = 0;
    const createCMs = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const name = `cm-${cmNext++}`;
        await cms.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns } });
        cmLive.add(name);
      }
    };
    const storeMatches = async () => {
      const list = await cms.list({ namespace: ns });
      const server = list.items.map((o) => o.metadata.name ?? '').sort();
      const store = informer
        .getIndexer()
        .listKeys()
        .map((k) => k.split('/')[1])
        .sort();
      return JSON.stringify(server) === JSON.stringify(store);
    };
    let reopenedAt = 0;
    const recoveries: number[] = [];
    try {
      await createCMs(20);
      await informer.whenSynced();
      await waitFor(storeMatches, { timeoutMs: 60_000, description: 'informer caught up' });
      for (let round = 0; round < rounds; round++) {
        // Cut ts-kcm and our informer off, change things behind their backs, compact etcd,
        // and restart the apiserver so a fresh watch cache cannot serve their old RVs either.
        proxy.refuse(600_000);
        proxy.cutAll();
        const victims = [...cmLive].slice(0, 5);
        for (const name of victims) {
          await cms.delete(name, { namespace: ns });
          cmLive.delete(name);
          cmDeleted.add(name);
        }
        await createCMs(5);
        await churn(s, scale(10));
        await compactEtcd();
        await restartApiserver();
        const relistsBefore = informer.stats().relists;
        proxy.refuse(0);
        reopenedAt = Date.now();
        await waitFor(() => informer.stats().relists > relistsBefore, {
          timeoutMs: 120_000,
          description: `round ${round}: informer relisted after 410`,
        });
        await waitFor(storeMatches, { timeoutMs: 60_000, description: `round ${round}: store matches` });
        recoveries.push(Date.now() - reopenedAt);
      }
      // Every deletion missed while cut off arrives once, as a tombstone; nothing else is deleted.
      expect([...seen.tombstones, ...seen.deletes].sort()).toEqual([...cmDeleted].sort());
      expect(seen.tombstones.length).toBeGreaterThan(0);
      const relists = (kcm.output().match(/resourceVersion too old; relisting/g) ?? []).length;
      // Recovery counts from the last reconnect, as the catch-up times in the note do.
      const violations = await converge(s, 'compaction', rounds, reopenedAt);
      report.last().note =
        `${rounds} compactions; informer: ${informer.stats().relists} relists, ${seen.tombstones.length} tombstones ` +
        `for ${cmDeleted.size} missed deletions; ts-kcm logged ${relists} relists; ` +
        `informer caught up ${recoveries.map((ms) => `${Math.round(ms / 100) / 10} s`).join(', ')} after reconnecting`;
      expect(violations).toEqual([]);
    } catch (err) {
      report.record({
        scenario: 'compaction',
        faults: recoveries.length,
        recoveryMs: null,
        violations: 0,
        note: `FAILED: ${(err as Error).message}`,
      });
      throw err;
    } finally {
      ac.abort();
      await running;
      await viaProxy.close();
      proxy.refuse(0);
    }
  }, 420_000);

  /**
   * The same controller behind the HTTP-level proxy, which can answer for the apiserver:
   * 429 storms, 500 storms and garbage. The TCP-proxied ts-kcm is stopped first, so what
   * converges is this one alone.
   */
  describe('through an HTTP fault proxy', () => {
    let http: HttpFaultProxy;
    let kcm2: TsKcmProcess;

    beforeAll(async () => {
      await kcm.stop('SIGTERM');
      http = await HttpFaultProxy.start({
        kubeconfig: cp.kubeconfigPath,
        maxLifetimeMs: (FULL ? 30 : 8) * 60_000,
      });
      const kubeconfig = join(cp.dir, 'http-proxied.kubeconfig');
      writeFileSync(kubeconfig, http.kubeconfigYaml(), { mode: 0o600 });
      kcm2 = startTsKcm(KCM_ARGS, { kubeconfig });
      await kcm2.waitForOutput(/starting workers/, 90_000);
    }, 120_000);

    afterAll(async () => {
      await kcm2?.stop('SIGTERM');
      if (kcm2) writeFileSync(join(tmpdir(), 'ts-kcm-faults-http.log'), kcm2.output());
      await http?.stop();
    }, 60_000);

    /**
     * Runs `fault` for `ms` while churning: the open watches keep delivering events for the
     * first half, so the workers' writes meet the fault; then the watches are cut, so the
     * informers must come back through it. Returns the requests seen meanwhile.
     */
    async function storm(s: Scenario, fault: HttpFault, ms: number, creates: number) {
      const from = Date.now();
      http.inject(fault, ms);
      const cut = setTimeout(() => http.cutStreams(), ms / 2);
      try {
        await churn(s, creates);
        await sleep(Math.max(0, from + ms - Date.now()));
      } finally {
        clearTimeout(cut);
        http.clear();
      }
      const seen = http.requestsBetween(from, from + ms);
      return { from, seen, faulted: seen.filter((r) => r.fault).length };
    }

    it('429 storm with Retry-After: honoured, no retry storm, nothing lost', async () => {
      const s = begin('429');
      const retryAfterSeconds = 2;
      const ms = FULL ? 60_000 : 12_000;
      const { seen, faulted } = await storm(s, { kind: 'tooManyRequests', retryAfterSeconds }, ms, scale(60));
      // Each request loop of ts-kcm (5 workers, 2 informers, a little slack for events and
      // discovery) may try once per Retry-After, plus its first try: anything near this is a
      // client that waits; a client that ignores Retry-After makes thousands.
      const loops = 5 + 2 + 3;
      const bound = loops * (Math.ceil(ms / 1000 / retryAfterSeconds) + 1);
      process.stderr.write(
        `faults[429]: ${seen.length} requests in ${ms} ms (${faulted} answered 429), bound ${bound}\n`,
      );
      expect(faulted).toBeGreaterThan(0);
      expect(seen.length).toBeLessThanOrEqual(bound);
      const violations = await converge(s, '429', faulted, Date.now(), kcm2);
      report.last().note = `${seen.length} requests in ${ms / 1000} s of 429 (Retry-After ${retryAfterSeconds} s), bound ${bound}`;
      expect(violations).toEqual([]);
      expect(kcm2.proc.exitCode).toBeNull();
    }, 240_000);

    it('garbage answers (truncated JSON, text/html, a 500 storm): logged, backed off, nothing lost', async () => {
      const s = begin('garbage');
      const ms = FULL ? 30_000 : 5_000;
      let faults = 0;
      let stormRequests = 0;
      let stormEvents = 0;
      for (const fault of [
        { kind: 'truncate', fraction: 0.5 },
        { kind: 'wrongContentType', fraction: 0.5 },
        { kind: 'serverError' },
      ] satisfies HttpFault[]) {
        const r = await storm(s, fault, ms, scale(20));
        faults += r.faulted;
        if (fault.kind === 'serverError') {
          const events = r.seen.filter((q) => /\/events(\/|\?|$)/.test(q.path));
          stormEvents = events.length;
          stormRequests = r.seen.length - events.length;
        }
      }
      // A 500 without Retry-After is not retried by the client; the work queue's shared bucket
      // (10 qps, burst 100) and the reflector's 800 ms doubling backoff bound the retries. A
      // failed reconcile also records a Warning event, written once (not retried after a 500),
      // so the event writes, counted apart (some come from the storms before), have the same bound.
      const bound = 100 + 10 * (ms / 1000) + scale(20) + 20;
      process.stderr.write(
        `faults[garbage]: 500 storm: ${stormRequests} requests and ${stormEvents} event writes in ${ms} ms, bound ${bound}\n`,
      );
      expect(stormRequests).toBeLessThanOrEqual(bound);
      expect(stormEvents).toBeLessThanOrEqual(bound);
      const violations = await converge(s, 'garbage', faults, Date.now(), kcm2);
      report.last().note = `truncate, text/html, 500 (${stormRequests} requests and ${stormEvents} event writes in ${ms / 1000} s of 500s)`;
      expect(violations).toEqual([]);
      expect(kcm2.proc.exitCode).toBeNull();
      expect(kcm2.output()).toMatch(/not JSON|WatchDecodeError|watch stream|invalid|Unexpected/i);
    }, 300_000);
  });
});

/**
 * Scenario 7 (full suite only): three replicas under leader election, the leader SIGKILLed
 * every 20 s for 3 minutes while ServiceCIDRs churn. Whether two replicas ever wrote at once
 * is read from the apiserver's own audit log: every ServiceCIDR write names its replica in
 * the User-Agent, and each write's time is checked against the Lease history recorded by a
 * watch. The bound checked, for a write received at t from the replica holding identity I:
 *   acquireTime(I) <= t,  t < acquireTime(next holder),  and
 *   t - (I's last renewTime at or before t) <= renew deadline + RENEW_SLACK_MS
 * (a leader stops writing once it has not renewed for the renew deadline; the slack covers
 * the time between stamping renewTime and the renew's success).
 */
const LEASE_S = 6;
const RENEW_DEADLINE_S = 4;
const RETRY_S = 1;
const RENEW_SLACK_MS = 1_000;
const KILL_EVERY_MS = 20_000;
const CHURN_MS = 180_000;

interface Replica {
  /** ts-kcm/<id> is its User-Agent; one id per process, so a restart gets a new one. */
  id: string;
  proc: TsKcmProcess;
  identity?: string;
}

(FULL ? describe : describe.skip)('faults: leader churn checked against the audit log', () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  const leaseName = uniqueName('churn-le');
  const replicas: Replica[] = [];
  let generation = 0;

  beforeAll(async () => {
    cp = await ControlPlane.start({ dir: mkdtempSync(join(tmpdir(), 'ts-kcm-churn-')), auditLog: true });
    admin = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }), { qps: 500, burst: 1000 });
  }, 300_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.proc.stop('SIGTERM')));
    writeFileSync(
      join(tmpdir(), 'ts-kcm-churn.log'),
      replicas.map((r) => `=== ${r.id} (${r.identity ?? '?'})\n${r.proc.output()}`).join('\n'),
    );
    await cp?.stop();
  }, 60_000);

  function startReplica(slot: number): Replica {
    const id = `churn-${slot}-${generation++}`;
    const proc = startTsKcm(
      [
        'run',
        '--controllers=service-cidr-controller',
        '--leader-elect=true',
        `--leader-elect-resource-name=${leaseName}`,
        '--leader-elect-resource-namespace=kube-system',
        `--leader-elect-lease-duration=${LEASE_S}s`,
        `--leader-elect-renew-deadline=${RENEW_DEADLINE_S}s`,
        `--leader-elect-retry-period=${RETRY_S}s`,
        `--user-agent=ts-kcm/${id}`,
        '--metrics-bind-address=0',
        '--health-probe-bind-address=0',
      ],
      { kubeconfig: cp.kubeconfigPath },
    );
    const r: Replica = { id, proc };
    // ts-kcm logs its Lease identity once at start: that ties the User-Agent to the Lease.
    void proc
      .waitForOutput(/"identity":"([^"]+)"[^\n]*"message":"starting controller manager"/, 60_000)
      .then((m) => (r.identity = m[1]))
      .catch(() => undefined);
    replicas.push(r);
    return r;
  }

  /** Every Lease state seen (ADDED/MODIFIED), re-watching from the last resourceVersion. */
  async function recordLease(history: LeaseRecord[], stop: AbortSignal): Promise<number> {
    let events = 0;
    let rv: string | undefined;
    const leases = admin.resource<Lease>(Resources.leases);
    while (!stop.aborted) {
      try {
        for await (const ev of leases.watch(
          {
            namespace: 'kube-system',
            fieldSelector: `metadata.name=${leaseName}`,
            allowWatchBookmarks: true,
            ...(rv ? { resourceVersion: rv } : {}),
          },
          stop,
        )) {
          if (ev.type === 'ERROR') {
            rv = undefined;
            break;
          }
          rv = ev.object.metadata.resourceVersion ?? rv;
          if (ev.type === 'BOOKMARK' || ev.type === 'DELETED') continue;
          events++;
          const spec = ev.object.spec;
          if (!spec?.holderIdentity || !spec.acquireTime || !spec.renewTime) continue;
          history.push({
            holder: spec.holderIdentity,
            acquiredMs: Date.parse(spec.acquireTime),
            renewMs: Date.parse(spec.renewTime),
          });
        }
      } catch {
        if (stop.aborted) break;
        await sleep(200);
      }
    }
    return events;
  }

  async function holder(): Promise<string | undefined> {
    try {
      const l = await admin.resource<Lease>(Resources.leases).get(leaseName, 'kube-system');
      return l.spec?.holderIdentity ?? undefined;
    } catch {
      return undefined;
    }
  }

  it('three replicas, the leader SIGKILLed every 20 s for 3 minutes: no write outside its leadership window', async () => {
    const history: LeaseRecord[] = [];
    const watchStop = new AbortController();
    const watching = recordLease(history, watchStop.signal);
    for (let slot = 0; slot < 3; slot++) startReplica(slot);
    await waitFor(async () => (await holder()) !== undefined, {
      timeoutMs: 90_000,
      description: 'a first leader',
    });

    const prefix = uniqueName('f-churn').slice(0, 30);
    const sampler = new ServiceCIDRSampler(admin, prefix);
    sampler.start();
    const live = new Set<string>();
    const deleted = new Set<string>();
    const names: string[] = [];
    const end = Date.now() + CHURN_MS;
    const scs = admin.resource<ServiceCIDR>(Resources.serviceCIDRs);
    const churning = (async () => {
      for (let i = 0; Date.now() < end; i++) {
        const name = `${prefix}-${i}`;
        await scs.create(serviceCIDR(name, i % 4096));
        names.push(name);
        live.add(name);
        if (i % 3 === 2) {
          const victim = names[Math.floor(Math.random() * names.length)] as string;
          if (live.delete(victim)) {
            deleted.add(victim);
            await scs.delete(victim);
          }
        }
        await sleep(100);
      }
    })();

    let kills = 0;
    let lastKillAt = Date.now();
    while (Date.now() + KILL_EVERY_MS <= end) {
      await sleep(KILL_EVERY_MS);
      const leader = await holder();
      const victim = replicas.find((r) => r.identity === leader && r.proc.proc.exitCode === null);
      if (!victim) continue; // between leaders (the Lease is expiring): nobody to kill this round
      await victim.proc.stop('SIGKILL');
      kills++;
      lastKillAt = Date.now();
      startReplica(Number(victim.id.split('-')[1]));
    }
    await churning;

    let violations = await converge();
    async function converge(): Promise<Violation[]> {
      let out: Violation[] = [];
      await waitFor(
        async () => {
          out = await checkServiceCIDRs(admin, prefix, live, deleted);
          return out.length === 0;
        },
        { timeoutMs: 150_000, intervalMs: 1_000, description: 'leader churn: invariants' },
      ).catch(() => undefined);
      return out;
    }
    const recoveryMs = Date.now() - lastKillAt;
    await sampler.stop();
    violations = [...violations, ...sampler.earlyReleases()];

    // Stop the replicas before the Lease watch, so no write can come after the last renew seen.
    await Promise.all(replicas.map((r) => r.proc.stop('SIGTERM')));
    await sleep(1_000);
    watchStop.abort();
    const leaseEvents = await watching;

    const byUserAgent = new Map(replicas.map((r) => [`ts-kcm/${r.id}`, r]));
    const events = parseAuditLog(readFileSync(cp.auditLogPath, 'utf8')).filter(
      (e) =>
        e.stage === 'ResponseComplete' &&
        WRITE_VERBS.has(e.verb) &&
        e.objectRef?.resource === 'servicecidrs' &&
        e.userAgent?.startsWith('ts-kcm/churn-'),
    );
    const checked = checkLeaderWrites(events, history, (ua) => byUserAgent.get(ua)?.identity, {
      renewDeadlineMs: RENEW_DEADLINE_S * 1000,
      slackMs: RENEW_SLACK_MS,
    });
    const fenceViolations = checked.violations;
    const writers = new Set(events.map((e) => e.userAgent));
    process.stderr.write(
      `faults[leader-churn]: kills ${kills}, Lease events ${leaseEvents}, leaders ${checked.leaderships}, ` +
        `writes checked ${events.length} from ${writers.size} replicas, fence violations ${fenceViolations.length}, ` +
        `invariant violations ${violations.length}, created ${live.size + deleted.size}, recovery ${recoveryMs} ms\n` +
        fenceViolations
          .slice(0, 20)
          .map((v) => `  ${v}\n`)
          .join(''),
    );
    report.record({
      scenario: 'leader-churn',
      created: live.size + deleted.size,
      deleted: deleted.size,
      faults: kills,
      recoveryMs,
      violations: violations.length + fenceViolations.length,
      note:
        `${events.length} ServiceCIDR writes from ${writers.size} replicas checked against ${leaseEvents} Lease events ` +
        `(${checked.leaderships} leaderships): written at t by I needs acquireTime(I) <= t < next acquireTime ` +
        `and t - last renew <= ${RENEW_DEADLINE_S} s renew deadline + ${RENEW_SLACK_MS / 1000} s; ` +
        `${fenceViolations.length} fence, ${violations.length} invariant violations`,
    });
    expect(kills).toBeGreaterThanOrEqual(5);
    expect(events.length).toBeGreaterThan(0);
    expect(writers.size).toBeGreaterThan(1);
    expect(fenceViolations).toEqual([]);
    expect(violations).toEqual([]);
  }, 480_000);
});
