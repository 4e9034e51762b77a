/**
 * `ts-kcm run` as a process against the real apiserver: probes and metrics, readiness only
 * after the caches sync, the Lease released on SIGINT with exit 0, usage errors exit 2, and
 * the embedded control plane when there is no kubeconfig at all.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Event, Lease } from '../../lib/api/index.js';
import { createKubeClient, loadKubeConfig, Resources, type KubeClient } from '../../lib/client/index.js';
import { ControlPlane } from '../../lib/controlplane/index.js';
import { EventBroadcaster } from '../../lib/events/index.js';
import { formatMicroTime } from '../../lib/api/index.js';
import {
  createTestNamespace,
  deleteNamespace,
  kubectl,
  runCommand,
  startTsKcm,
  testKubeconfigPath,
  TS_KCM_MAIN,
  uniqueName,
  waitFor,
} from '../support/cluster.js';

type TsKcm = ReturnType<typeof startTsKcm>;

let client: KubeClient;
const procs: TsKcm[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function start(args: string[], opts: Parameters<typeof startTsKcm>[1] = {}): TsKcm {
  const p = startTsKcm(
    ['run', '--metrics-bind-address=127.0.0.1:0', '--health-probe-bind-address=127.0.0.1:0', ...args],
    opts,
  );
  procs.push(p);
  return p;
}

async function addressOf(p: TsKcm, what: 'metrics' | 'health probes', timeoutMs?: number): Promise<string> {
  const m = await p.waitForOutput(
    new RegExp(`"address":"([^"]+)"[^\\n]*"message":"serving ${what}"`),
    timeoutMs,
  );
  return m[1]!;
}

async function get(address: string, path: string): Promise<[number, string]> {
  const res = await fetch(`http://${address}${path}`);
  return [res.status, await res.text()];
}

function leases() {
  return client.resource<Lease>(Resources.leases);
}

beforeAll(() => {
  client = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }), { qps: 100, burst: 200 });
});

const embeddedDirs: string[] = [];
const tempDirs: string[] = [];

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  // A ts-kcm killed before its shutdown leaves its (detached) embedded control plane running.
  for (const dir of embeddedDirs) {
    if (existsSync(join(dir, 'state.json'))) await ControlPlane.load(dir).stop();
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('ts-kcm run', () => {
  it('is not ready until it leads and its caches sync; serves metrics; SIGINT releases the lease and exits 0', async () => {
    const leaseName = uniqueName('mgr-test');
    // Someone else holds the lease (5 s): we start as a standby, so "before sync" is a stable state.
    const now = Date.now();
    await leases().create(
      {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: leaseName, namespace: 'kube-system' },
        spec: {
          holderIdentity: 'someone-else',
          leaseDurationSeconds: 5,
          acquireTime: formatMicroTime(now),
          renewTime: formatMicroTime(now),
          leaseTransitions: 0,
        },
      },
      { namespace: 'kube-system' },
    );
    const p = start([
      '--controllers=resourceclaim-controller',
      `--leader-elect-resource-name=${leaseName}`,
      '--leader-elect-retry-period=500ms',
      '--v=4',
    ]);
    const health = await addressOf(p, 'health probes');
    const metricsAddr = await addressOf(p, 'metrics');
    expect(health).toMatch(/^127\.0\.0\.1:\d+$/);
    await p.waitForOutput(/"message":"attempting to acquire leader lease"/);

    // A standby is Ready (healthy, waiting for the Lease), so a 2-replica rollout completes.
    const [status, body] = await get(health, '/readyz?verbose');
    expect(status).toBe(200);
    expect(body).toContain('[+]informer-sync ok\n');
    expect(body).toContain('[+]ping ok\n');
    expect(body.endsWith('readyz check passed\n')).toBe(true);
    expect(await get(health, '/healthz')).toEqual([200, 'ok']);
    expect(p.output()).not.toContain('"message":"caches synced"');
    // -v 4 logs debug lines, as JSON with a level.
    await p.waitForOutput(
      /"level":"debug","message":"lease is held by another holder and has not yet expired"/,
    );

    // The other holder never renews: after 5 s on our clock the lease is ours.
    await p.waitForOutput(/"message":"successfully acquired lease"/, 30_000);
    await p.waitForOutput(/"message":"caches synced"/, 30_000);
    await waitFor(async () => (await get(health, '/readyz'))[0] === 200, { description: '/readyz 200' });
    expect(await get(health, '/readyz')).toEqual([200, 'ok']);
    expect((await get(health, '/readyz?verbose'))[1]).toBe(
      '[+]ping ok\n[+]leaderElection ok\n[+]informer-sync ok\n[+]controllers-started ok\n[+]shutdown ok\nreadyz check passed\n',
    );
    expect(await get(health, '/healthz?verbose')).toEqual([
      200,
      '[+]ping ok\n[+]leaderElection ok\n[+]event-loop ok\nhealthz check passed\n',
    ]);

    const [mStatus, m] = await get(metricsAddr, '/metrics');
    expect(mStatus).toBe(200);
    expect(m).toMatch(/^workqueue_depth\{name="resource_claim"\} \d+$/m);
    expect(m).toMatch(/^workqueue_adds_total\{name="resource_claim"\} \d+$/m);
    expect(m).toMatch(/^rest_client_requests_total\{code="200",method="GET",host="127\.0\.0\.1:\d+"\} \d+$/m);
    expect(m).toContain('rest_client_request_duration_seconds_bucket{');
    expect(m).toContain(`leader_election_master_status{name="${leaseName}"} 1`);
    expect(m).toContain('process_cpu_user_seconds_total');

    const lease = await leases().get(leaseName, 'kube-system');
    const id = (p.output().match(/"identity":"([^"]+)"[^\n]*"message":"starting controller manager"/) ??
      [])[1];
    expect(lease.spec?.holderIdentity).toBe(id);
    expect(lease.spec?.leaseTransitions).toBe(1);

    expect(await p.stop('SIGINT')).toBe(0);
    expect(p.output()).toContain('"message":"received signal, shutting down"');
    expect(p.output()).toContain('"message":"released leader lease"');
    expect(p.output()).toContain('"message":"controller manager stopped"');
    const released = await leases().get(leaseName, 'kube-system');
    expect(released.spec?.holderIdentity).toBe('');
    expect(released.spec?.leaseDurationSeconds).toBe(1);
  }, 90_000);

  it('stops all work and exits 1 when another holder takes the lease', async () => {
    const leaseName = uniqueName('mgr-lost');
    const p = start([
      '--controllers=resourceclaim-controller',
      `--leader-elect-resource-name=${leaseName}`,
      '--leader-elect-lease-duration=4s',
      '--leader-elect-renew-deadline=2s',
      '--leader-elect-retry-period=500ms',
    ]);
    await p.waitForOutput(/"message":"caches synced"/, 30_000);
    // Another party overwrites the lease (retrying our own renews' conflicts).
    await waitFor(
      async () => {
        const cur = await leases().get(leaseName, 'kube-system');
        const spec = {
          ...cur.spec,
          holderIdentity: 'usurper',
          leaseDurationSeconds: 3600,
          renewTime: formatMicroTime(Date.now()),
        };
        await leases().update({ ...cur, spec }, { namespace: 'kube-system' });
        return true;
      },
      { description: 'taking the lease away' },
    );
    await p.waitForOutput(/"level":"error","message":"leaderelection lost"/, 30_000);
    await waitFor(() => p.proc.exitCode !== null, { description: 'ts-kcm to exit' });
    expect(await p.stop()).toBe(1);
    expect(p.output()).toContain('"message":"failed to renew lease: timed out waiting for the condition"');
    expect(p.output()).not.toContain('"message":"released leader lease"');
    expect((await leases().get(leaseName, 'kube-system')).spec?.holderIdentity).toBe('usurper');
  }, 60_000);

  it('with --leader-elect=false runs without a Lease', async () => {
    const leaseName = uniqueName('mgr-nole');
    const p = start([
      '--controllers=resourceclaim-controller',
      '--leader-elect=false',
      `--leader-elect-resource-name=${leaseName}`,
    ]);
    const health = await addressOf(p, 'health probes');
    await p.waitForOutput(/"message":"caches synced"/, 30_000);
    await waitFor(async () => (await get(health, '/readyz'))[0] === 200, { description: '/readyz 200' });
    expect(await p.stop('SIGTERM')).toBe(0);
    await expect(leases().get(leaseName, 'kube-system')).rejects.toMatchObject({ code: 404 });
  }, 60_000);

  it('stays up until told to stop even when nothing else holds the process open', async () => {
    // No controller, no probe or metrics server, no Lease: nothing but the manager itself keeps
    // the event loop alive (Node ended such a process at once with exit 13, mid-await).
    const p = start([
      '--controllers=-service-cidr-controller,-resourceclaim-controller,-service-lb-ipam-controller',
      '--leader-elect=false',
      '--metrics-bind-address=0',
      '--health-probe-bind-address=0',
    ]);
    await p.waitForOutput(/"message":"caches synced"/, 30_000);
    await sleep(2_000);
    expect(p.proc.exitCode).toBeNull();
    expect(await p.stop('SIGTERM')).toBe(0);
  }, 60_000);

  it('exits 2 with a clear message on unknown controllers, unknown flags and bad durations', async () => {
    const node = process.execPath;
    const kc = ['--kubeconfig', testKubeconfigPath()];
    const unknownController = await runCommand(node, [TS_KCM_MAIN, 'run', '--controllers=*,nope', ...kc]);
    expect(unknownController.code).toBe(2);
    expect(unknownController.stderr).toContain(
      'error: --controllers: unknown controller "nope"; known controllers: ',
    );
    const unknownFlag = await runCommand(node, [TS_KCM_MAIN, 'run', '--no-such-flag', ...kc]);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toContain("error: unknown option '--no-such-flag'");
    expect(unknownFlag.stderr).toContain('Usage: ts-kcm run [options]');
    const badDuration = await runCommand(node, [
      TS_KCM_MAIN,
      'run',
      '--leader-elect-lease-duration=15',
      ...kc,
    ]);
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toContain('invalid duration "15"');
  }, 60_000);

  it('with no kubeconfig anywhere brings up the embedded control plane and stops it on SIGINT', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ts-kcm-embedded-'));
    tempDirs.push(cwd);
    // A HOME without ~/.kube/config; the binaries still come from the real build cache.
    const cacheDir =
      process.env.TS_KCM_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ts-kcm');
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: cwd, TS_KCM_CACHE_DIR: cacheDir };
    delete env.KUBECONFIG;
    delete env.KUBERNETES_SERVICE_HOST;
    const dir = join(cwd, '.ts-kcm', 'embedded');
    embeddedDirs.push(dir);
    // service-lb-ipam-controller needs its CRD: the embedded control plane gets it installed.
    const p = start(['--leader-elect=false', '--controllers=*,service-lb-ipam-controller'], {
      kubeconfig: false,
      env,
      cwd,
    });
    await p.waitForOutput(new RegExp(`kubectl --kubeconfig ${dir}/kubeconfig get servicecidrs`), 120_000);
    await p.waitForOutput(/"message":"caches synced"/, 60_000);
    expect(existsSync(join(dir, 'kubeconfig'))).toBe(true);
    expect(p.output()).toContain('"message":"installed CRDs into the embedded control plane"');
    const crd = await kubectl([
      '--kubeconfig',
      join(dir, 'kubeconfig'),
      'get',
      'crd',
      'loadbalancerippools.lb.ts-kcm.io',
    ]);
    expect(crd.code).toBe(0);
    expect(await p.stop('SIGINT', 60_000)).toBe(0);
    expect(p.output()).toContain('"message":"stopping the embedded control plane"');
    expect(existsSync(join(dir, 'kubeconfig'))).toBe(false);
  }, 180_000);
});

describe('EventBroadcaster against the apiserver', () => {
  it('writes events.k8s.io/v1 Events the apiserver accepts and folds repeats into a series', async () => {
    const ns = await createTestNamespace('events');
    try {
      const b = new EventBroadcaster({ client });
      const rec = b.newRecorder('test-controller', 'test-controller-host');
      const regarding = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'cm', namespace: ns, uid: 'u-1' },
      };
      rec.event(regarding, 'Warning', 'SomethingFailed', 'Sync', 'it failed');
      await b.idle();
      rec.event(regarding, 'Warning', 'SomethingFailed', 'Sync', 'it failed');
      rec.event(regarding, 'Warning', 'SomethingFailed', 'Sync', 'it failed');
      await b.idle();
      await b.flush();
      rec.event(
        { apiVersion: 'v1', kind: 'Node', metadata: { name: uniqueName('node') } },
        'Normal',
        'Seen',
        'Observe',
        'cluster-scoped',
      );
      await b.shutdown();
      const events = (await client.resource<Event>(Resources.events).list({ namespace: ns })).items;
      expect(events).toHaveLength(1);
      const e = events[0]!;
      expect(e).toMatchObject({
        reportingController: 'test-controller',
        reportingInstance: 'test-controller-host',
        reason: 'SomethingFailed',
        action: 'Sync',
        note: 'it failed',
        type: 'Warning',
        regarding: { apiVersion: 'v1', kind: 'ConfigMap', name: 'cm', namespace: ns, uid: 'u-1' },
        series: { count: 3 },
      });
      expect(e.eventTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      const defaults = (await client.resource<Event>(Resources.events).list({ namespace: 'default' })).items;
      expect(defaults.some((x) => x.reason === 'Seen' && x.regarding.kind === 'Node')).toBe(true);
    } finally {
      await deleteNamespace(ns);
    }
  }, 30_000);
});
