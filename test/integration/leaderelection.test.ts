/**
 * Two `ts-kcm run` processes against one apiserver: exactly one holds the Lease and
 * reconciles; SIGKILL it and the other takes over within lease duration + retry period (plus
 * measurement slack); a SIGINT releases the lease.
 *
 * Timings are shorter than the defaults (lease 6 s, renew 4 s, retry 1 s) to keep the test
 * short while leaving a loaded two-core machine room to renew in time.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Lease, ResourceClaim } from '../../lib/api/index.js';
import { createKubeClient, loadKubeConfig, Resources, type KubeClient } from '../../lib/client/index.js';
import {
  createTestNamespace,
  deleteNamespace,
  startTsKcm,
  testKubeconfigPath,
  uniqueName,
  waitFor,
} from '../support/cluster.js';

const LEASE_MS = 6_000;
const RETRY_MS = 1_000;
/**
 * What the bound leaseDuration + retryPeriod (argued in lib/leaderelection, acquire()) leaves
 * out and this test's stopwatch adds: the standby's GET that sees the last renew and its GET +
 * PUT that take over (a few ms each on an idle machine), timers firing late, and the log line
 * travelling through the pipe to this process, on a two-core machine other tests load too.
 */
const SLACK_MS = 1_000;

type TsKcm = ReturnType<typeof startTsKcm>;

let client: KubeClient;
let ns: string;
const leaseName = uniqueName('le-test');
const procs: TsKcm[] = [];

function start(): TsKcm {
  const p = startTsKcm([
    'run',
    '--controllers=resourceclaim-controller',
    `--leader-elect-resource-name=${leaseName}`,
    '--leader-elect-resource-namespace=kube-system',
    `--leader-elect-lease-duration=${LEASE_MS / 1000}s`,
    '--leader-elect-renew-deadline=4s',
    `--leader-elect-retry-period=${RETRY_MS / 1000}s`,
    '--metrics-bind-address=127.0.0.1:0',
    '--health-probe-bind-address=127.0.0.1:0',
  ]);
  procs.push(p);
  return p;
}

async function addressOf(p: TsKcm, what: 'metrics' | 'health probes'): Promise<string> {
  const m = await p.waitForOutput(new RegExp(`"address":"([^"]+)"[^\\n]*"message":"serving ${what}"`));
  return m[1]!;
}

async function identityOf(p: TsKcm): Promise<string> {
  return (await p.waitForOutput(/"identity":"([^"]+)"[^\n]*"message":"starting controller manager"/))[1]!;
}

async function metrics(address: string): Promise<string> {
  return (await fetch(`http://${address}/metrics`)).text();
}

/** Sum of ts_kcm_reconcile_total for the resourceclaim controller. */
function reconciles(text: string): number {
  return text
    .split('\n')
    .filter(
      (l) => l.startsWith('ts_kcm_reconcile_total{') && l.includes('controller="resourceclaim-controller"'),
    )
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

async function holder(): Promise<string> {
  const lease = await client.resource<Lease>(Resources.leases).get(leaseName, 'kube-system');
  return lease.spec?.holderIdentity ?? '';
}

beforeAll(async () => {
  client = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }), { qps: 100, burst: 200 });
  ns = await createTestNamespace('le');
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await deleteNamespace(ns);
});

describe('leader election between two ts-kcm processes', () => {
  it('one leads and reconciles; SIGKILL hands over; SIGINT releases', async () => {
    const a = start();
    const b = start();
    const [idA, idB] = await Promise.all([identityOf(a), identityOf(b)]);
    const [metricsA, metricsB] = await Promise.all([addressOf(a, 'metrics'), addressOf(b, 'metrics')]);

    // Exactly one leads: the Lease names it, it logged the acquisition, and the other did not.
    const leaderId = await waitFor(
      async () => {
        const h = await holder().catch(() => '');
        return h === idA || h === idB ? h : undefined;
      },
      { timeoutMs: 30_000, description: 'a Lease holder' },
    );
    const [leader, standby, standbyId] = leaderId === idA ? [a, b, idB] : [b, a, idA];
    const [leaderMetrics, standbyMetrics] = leaderId === idA ? [metricsA, metricsB] : [metricsB, metricsA];
    await leader.waitForOutput(/"message":"caches synced"/);
    // A few standby polls later the standby still has not acquired.
    await new Promise((r) => setTimeout(r, 3 * RETRY_MS));
    expect(standby.output()).not.toContain('"message":"successfully acquired lease"');
    expect(standby.output()).not.toContain('"message":"caches synced"');
    expect(await holder()).toBe(leaderId);
    expect(await metrics(leaderMetrics)).toContain(`leader_election_master_status{name="${leaseName}"} 1`);
    expect(await metrics(standbyMetrics)).toContain(`leader_election_master_status{name="${leaseName}"} 0`);

    // Only the leader reconciles: a new claim is handled by it alone.
    const claim: ResourceClaim = {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceClaim',
      metadata: { name: 'claim-1', namespace: ns },
      spec: { devices: { requests: [{ name: 'req', exactly: { deviceClassName: 'example.com' } }] } },
    };
    await client.resource<ResourceClaim>(Resources.resourceClaims).create(claim, { namespace: ns });
    await waitFor(async () => reconciles(await metrics(leaderMetrics)) > 0, {
      description: 'a reconcile on the leader',
    });
    expect(reconciles(await metrics(standbyMetrics))).toBe(0);

    // SIGKILL: no release; the standby must wait out the lease on its own clock.
    const killedAt = Date.now();
    await leader.stop('SIGKILL');
    await standby.waitForOutput(/"message":"successfully acquired lease"/, 30_000);
    const takeoverMs = Date.now() - killedAt;
    process.stderr.write(
      `leader election: takeover ${takeoverMs} ms after SIGKILL (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms)\n`,
    );
    // The last renew (at or before the kill) is seen within one poll, and the takeover attempt
    // is timed for exactly one lease after that.
    expect(takeoverMs).toBeLessThanOrEqual(LEASE_MS + RETRY_MS + SLACK_MS);
    // Never early: the last renew came at most about a retry period before the kill.
    expect(takeoverMs).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS);
    expect(await holder()).toBe(standbyId);
    await standby.waitForOutput(/"message":"caches synced"/);
    await waitFor(async () => reconciles(await metrics(standbyMetrics)) > 0, {
      description: 'a reconcile on the new leader',
    });

    // Graceful stop: exit 0 and the Lease released (empty holder).
    expect(await standby.stop('SIGINT')).toBe(0);
    expect(standby.output()).toContain('"message":"released leader lease"');
    expect(await holder()).toBe('');
  }, 120_000);
});
