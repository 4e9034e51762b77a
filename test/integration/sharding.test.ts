/**
 * Two `ts-kcm run --sharding-ring` replicas share service-cidr-controller's keys on a private
 * control plane (so no other test's ts-kcm touches these ServiceCIDRs).
 *
 * Writer identity comes from the apiserver, not from the replicas: each runs with its own
 * `--user-agent`, so the finalizer patches it makes (no fieldManager) are recorded in
 * managedFields under `shard-a` / `shard-b`. A watch opened by the test records, in
 * resourceVersion order, which manager's entry each event changed. The checker then proves:
 * every key was written by one replica at a time (the writers of a key never interleave), a
 * key moves only from the killed replica to the survivor and only after the kill, and nothing
 * is lost. The survivor takes over within lease duration + retry period (plus slack).
 *
 * Timings are shorter than the defaults (lease 8 s, renew 4 s, retry 1 s: list freshness 2.4 s)
 * to keep the test short; the warm-up is one lease duration.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceCIDR } from '../../lib/api/index.js';
import { createKubeClient, loadKubeConfig, Resources, type RestKubeClient } from '../../lib/client/index.js';
import { ControlPlane } from '../../lib/controlplane/index.js';
import { HashRing } from '../../lib/sharding/index.js';
import { startTsKcm, waitFor, type TsKcmProcess } from '../support/cluster.js';

const LEASE_MS = 8_000;
const RETRY_MS = 1_000;
/** Beyond L + P: the survivor's list that sees no change, timers, a loaded two-core machine. */
const SLACK_MS = 2_000;
const RING = 'it-ring';
const FINALIZER = 'networking.k8s.io/service-cidr-finalizer';
const FIRST = 40;
const SECOND = 20;

let cp: ControlPlane | undefined;
let client: RestKubeClient;
const procs: TsKcmProcess[] = [];
const watchStop = new AbortController();

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  time?: string;
}

interface Write {
  key: string;
  writer: string;
  rv: number;
  at: number;
}
const writes: Write[] = [];

function start(name: string): TsKcmProcess {
  const p = startTsKcm(
    [
      'run',
      '--controllers=service-cidr-controller',
      `--sharding-ring=${RING}`,
      '--leader-elect-resource-namespace=kube-system',
      `--leader-elect-lease-duration=${LEASE_MS / 1000}s`,
      '--leader-elect-renew-deadline=4s',
      `--leader-elect-retry-period=${RETRY_MS / 1000}s`,
      '--metrics-bind-address=127.0.0.1:0',
      '--health-probe-bind-address=127.0.0.1:0',
      `--user-agent=${name}/sharding-test`,
    ],
    { kubeconfig: cp!.kubeconfigPath },
  );
  procs.push(p);
  return p;
}

async function addressOf(p: TsKcmProcess, what: 'metrics' | 'health probes'): Promise<string> {
  return (await p.waitForOutput(new RegExp(`"address":"([^"]+)"[^\\n]*"message":"serving ${what}"`)))[1]!;
}

async function identityOf(p: TsKcmProcess): Promise<string> {
  return (await p.waitForOutput(/"identity":"([^"]+)"[^\n]*"message":"starting controller manager"/))[1]!;
}

async function readyz(address: string): Promise<string> {
  return (await fetch(`http://${address}/readyz?verbose`)).text();
}

function keysOwned(metrics: string): number {
  const m = /ts_kcm_shard_keys_owned\{controller="service-cidr-controller"\} (\d+)/.exec(metrics);
  return m ? Number(m[1]) : NaN;
}

function cidr(name: string, i: number): ServiceCIDR {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'ServiceCIDR',
    metadata: { name },
    spec: { cidrs: [`10.${100 + (i >> 8)}.${i & 255}.0/24`] },
  };
}

function done(sc: ServiceCIDR | undefined): boolean {
  return (
    sc !== undefined &&
    (sc.metadata.finalizers ?? []).includes(FINALIZER) &&
    (sc.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

/** Records, from the apiserver's watch, which replica's managedFields entry each event changed. */
async function recordWrites(fromRv: string): Promise<void> {
  const last = new Map<string, Map<string, string>>();
  const rc = client.resource<ServiceCIDR>(Resources.serviceCIDRs);
  let rv = fromRv;
  while (!watchStop.signal.aborted) {
    try {
      for await (const ev of rc.watch({ resourceVersion: rv, allowWatchBookmarks: true }, watchStop.signal)) {
        if (ev.type === 'ERROR') break;
        rv = ev.object.metadata.resourceVersion ?? rv;
        if (ev.type === 'BOOKMARK') continue;
        const key = ev.object.metadata.name ?? '';
        const seen = last.get(key) ?? new Map<string, string>();
        for (const mf of (ev.object.metadata.managedFields ?? []) as ManagedFieldsEntry[]) {
          const writer = mf.manager ?? '';
          if (!writer.startsWith('shard-')) continue;
          const stamp = `${mf.operation}|${mf.subresource ?? ''}|${mf.time}`;
          if (seen.get(writer) === stamp) continue;
          seen.set(writer, stamp);
          writes.push({ key, writer, rv: Number(rv), at: Date.now() });
        }
        last.set(key, seen);
      }
    } catch {
      if (watchStop.signal.aborted) return;
    }
  }
}

beforeAll(async () => {
  cp = await ControlPlane.start({ dir: mkdtempSync(join(tmpdir(), 'ts-kcm-sharding-')) });
  client = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }), { qps: 200, burst: 400 });
}, 120_000);

afterAll(async () => {
  watchStop.abort();
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await client?.close();
  await cp?.stop();
}, 60_000);

describe('sharding ring: two replicas share ServiceCIDR keys', () => {
  it('splits the keys with no key written by two replicas at once; a SIGKILLed replica’s keys are taken over within L + P', async () => {
    const a = start('shard-a');
    const b = start('shard-b');
    await a.waitForOutput(/--leader-elect is ignored/);
    const [idA, idB] = await Promise.all([identityOf(a), identityOf(b)]);
    // Every replica computes this same ring from the two Leases.
    const ring = new HashRing([idA, idB]);
    const replicaOf = (key: string): string => (ring.owner(key) === idA ? 'shard-a' : 'shard-b');
    const [healthA, healthB] = await Promise.all([
      addressOf(a, 'health probes'),
      addressOf(b, 'health probes'),
    ]);
    const [metricsA, metricsB] = await Promise.all([addressOf(a, 'metrics'), addressOf(b, 'metrics')]);
    await waitFor(
      async () => {
        const [ra, rb] = await Promise.all([readyz(healthA), readyz(healthB)]);
        return ra.includes('members=2') && ra.includes('self=active') && rb.includes('self=active');
      },
      { timeoutMs: 60_000, description: 'both replicas active in a ring of two' },
    );

    const rc = client.resource<ServiceCIDR>(Resources.serviceCIDRs);
    const list = await rc.list();
    void recordWrites(list.metadata.resourceVersion ?? '0');

    const first = Array.from({ length: FIRST }, (_, i) => `shard-sc-${i}`);
    await Promise.all(first.map((n, i) => rc.create(cidr(n, i))));
    await waitFor(
      async () => (await rc.list()).items.filter((s) => first.includes(s.metadata.name!)).every(done),
      {
        timeoutMs: 60_000,
        description: 'every ServiceCIDR finalized and Ready',
      },
    );
    // Summed over the replicas, the owned keys are every cached ServiceCIDR (ours + `kubernetes`).
    await waitFor(
      async () => {
        const [ma, mb] = await Promise.all(
          [metricsA, metricsB].map(async (m) => (await fetch(`http://${m}/metrics`)).text()),
        );
        return keysOwned(ma) + keysOwned(mb) === FIRST + 1 && keysOwned(ma) > 0 && keysOwned(mb) > 0;
      },
      { timeoutMs: 10_000, description: 'ts_kcm_shard_keys_owned summing to the object count' },
    );
    const firstWriter = new Map<string, string>();
    for (const w of writes) if (!firstWriter.has(w.key)) firstWriter.set(w.key, w.writer);
    const aKeys = first.filter((k) => firstWriter.get(k) === 'shard-a');
    const bKeys = first.filter((k) => firstWriter.get(k) === 'shard-b');
    expect(aKeys.length + bKeys.length).toBe(FIRST);
    // Each key was written by exactly the replica the ring names.
    for (const k of first) expect([k, firstWriter.get(k)]).toEqual([k, replicaOf(k)]);
    expect(aKeys.length).toBeGreaterThan(FIRST / 5);
    expect(bKeys.length).toBeGreaterThan(FIRST / 5);

    // SIGKILL a; while its Lease runs out, create more keys and delete some of each replica's.
    const killedAt = Date.now();
    await a.stop('SIGKILL');
    const second = Array.from({ length: SECOND }, (_, i) => `shard-sc-${FIRST + i}`);
    await Promise.all(second.map((n, i) => rc.create(cidr(n, FIRST + i))));
    const deleted = [...aKeys.slice(0, 6), ...bKeys.slice(0, 4)];
    await Promise.all(deleted.map((n) => rc.delete(n)));

    await waitFor(async () => (await readyz(healthB)).includes('members=1 '), {
      timeoutMs: LEASE_MS + RETRY_MS + 10_000,
      intervalMs: 50,
      description: 'the survivor alone in the ring',
    });
    const takeoverMs = Date.now() - killedAt;
    process.stderr.write(
      `sharding: takeover ${takeoverMs} ms after SIGKILL (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms)\n`,
    );
    expect(takeoverMs).toBeLessThanOrEqual(LEASE_MS + RETRY_MS + SLACK_MS);

    // Nothing lost: every live key finalized and Ready, every deleted one gone (its finalizer removed).
    const live = [...first.filter((k) => !deleted.includes(k)), ...second];
    await waitFor(
      async () => {
        const items = (await rc.list()).items;
        const byName = new Map(items.map((s) => [s.metadata.name!, s]));
        return live.every((k) => done(byName.get(k))) && deleted.every((k) => !byName.has(k));
      },
      // Deletion waits out the controller's 10 s grace period after deletionTimestamp.
      { timeoutMs: 60_000, description: 'new keys reconciled and deleted keys released by the survivor' },
    );
    await new Promise((r) => setTimeout(r, 500)); // let the watch deliver the last events

    // The checker, from the apiserver's record of who wrote what, in resourceVersion order.
    const byKey = new Map<string, Write[]>();
    for (const w of [...writes].sort((x, y) => x.rv - y.rv))
      byKey.set(w.key, [...(byKey.get(w.key) ?? []), w]);
    const violations: string[] = [];
    for (const [key, ws] of byKey) {
      const runs = ws.map((w) => w.writer).filter((w, i, all) => i === 0 || all[i - 1] !== w);
      if (runs.length > 2 || (runs.length === 2 && runs.join() !== 'shard-a,shard-b'))
        violations.push(`${key}: writers ${runs.join(' -> ')}`);
      for (const w of ws) {
        // a writes only before it died (a request in flight at the kill may land a moment later).
        if (w.writer === 'shard-a' && w.at > killedAt + 1_000)
          violations.push(`${key}: shard-a wrote after its kill`);
      }
      if (runs.length === 2) {
        const firstB = ws.find((w) => w.writer === 'shard-b')!;
        if (firstB.at < killedAt) violations.push(`${key}: shard-b wrote it while shard-a owned it`);
      }
    }
    expect(violations).toEqual([]);
    // The new keys were all b's, including those the two-member ring gave to a: taken over.
    const aShareOfNew = second.filter((k) => replicaOf(k) === 'shard-a');
    expect(aShareOfNew.length).toBeGreaterThan(0);
    for (const k of second)
      expect([k, [...new Set(byKey.get(k)?.map((w) => w.writer))]]).toEqual([k, ['shard-b']]);
    // (Finalizer removals leave no managedFields entry to attribute; that a's deleted keys are
    // gone shows the survivor released them.)
  }, 170_000);
});
