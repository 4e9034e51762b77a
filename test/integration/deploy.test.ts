/**
 * The shipped manifests against the real apiserver: the kustomize base and the kind overlay
 * pass a server-side dry run, and the base applies for real (no kubelet here, so its pods
 * stay Pending; what is checked is that every rendered object is accepted as written). Then
 * ts-kcm runs the way the Deployment runs it (its exact args, bind addresses aside) in the
 * in-cluster environment with a TokenRequest token for the manifests' ServiceAccount, so
 * only the manifests' RBAC applies: both replicas Ready, one leads, SIGTERM hands over.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MANIFEST_OPTIONS, deploymentArgs } from '../../lib/manifests/index.js';
import { kubectl, startTsKcm, testKubeConfig, type TsKcmProcess } from '../support/cluster.js';
import { usePrivateControlPlane } from '../support/private-control-plane.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NAMESPACE = DEFAULT_MANIFEST_OPTIONS.namespace;
const SA = DEFAULT_MANIFEST_OPTIONS.name;
const LEASE_MS = 15_000; // the Deployment keeps the defaults: lease 15 s, retry 2 s
const RETRY_MS = 2_000;

/** The Deployment's args with both servers on free loopback ports, so two fit on one host. */
function localArgs(): string[] {
  return deploymentArgs(DEFAULT_MANIFEST_OPTIONS).map((a) =>
    /^--(metrics|health-probe)-bind-address=/.test(a) ? `${a.split('=')[0]}=127.0.0.1:0` : a,
  );
}

async function readyz(p: TsKcmProcess): Promise<number> {
  const [, address] = await p.waitForOutput(
    /"address":"([^"]+)","level":"info","message":"serving health probes"/,
  );
  return (await fetch(`http://${address}/readyz`)).status;
}

const canI = async (verb: string, resource: string, ns: string) =>
  (
    await kubectl([
      'auth',
      'can-i',
      verb,
      resource,
      '-n',
      ns,
      '--as',
      `system:serviceaccount:${NAMESPACE}:${SA}`,
    ])
  ).stdout.trim();

/**
 * The run's shared control plane has the CRDs already (test/support/global-setup.ts),
 * created without kubectl, so kubectl notes once per CRD that it adds its annotation; any
 * other line on stderr is a failure.
 */
function withoutCRDNotice(stderr: string): string {
  return stderr.replace(
    /^Warning: resource customresourcedefinitions\/\S+ is missing the kubectl\.kubernetes\.io\/last-applied-configuration annotation .*$\n?/gm,
    '',
  );
}

// Its own control plane: other tests' leftovers must not meet its dry runs and its
// no-Forbidden check (see test/support/private-control-plane.ts).
usePrivateControlPlane();

describe('manifests/ (kustomize base and kind overlay)', () => {
  let saDir: string | undefined;
  const procs: TsKcmProcess[] = [];

  beforeAll(async () => {
    // A dry run cannot create the Namespace its namespaced objects need: make it first.
    const ns = await kubectl(['create', 'namespace', NAMESPACE, '--save-config']);
    expect(ns.code === 0 || /AlreadyExists/.test(ns.stderr)).toBe(true);
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    if (saDir) rmSync(saDir, { recursive: true, force: true });
    await kubectl(['delete', '-k', join(repoRoot, 'manifests'), '--wait=false']);
  });

  it('pass kubectl apply --dry-run=server -k, and the base applies for real', async () => {
    for (const dir of ['manifests', 'manifests/overlays/kind']) {
      const dry = await kubectl(['apply', '--dry-run=server', '-k', join(repoRoot, dir)]);
      expect({ dir, stderr: withoutCRDNotice(dry.stderr), code: dry.code }).toEqual({
        dir,
        stderr: '',
        code: 0,
      });
      expect(dry.stdout).toMatch(/deployment\.apps\/ts-kcm created \(server dry run\)/);
    }
    const applied = await kubectl(['apply', '-k', join(repoRoot, 'manifests')]);
    expect({ stderr: withoutCRDNotice(applied.stderr), code: applied.code }).toEqual({ stderr: '', code: 0 });
    const deployment = await kubectl(['get', 'deployment', 'ts-kcm', '-n', NAMESPACE, '-o', 'json']);
    expect(deployment.code).toBe(0);
    const spec = JSON.parse(deployment.stdout).spec;
    expect(spec.replicas).toBe(2);
    expect(spec.template.spec.containers[0].args).toEqual(deploymentArgs(DEFAULT_MANIFEST_OPTIONS));
    expect(spec.template.spec.containers[0].securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    for (const kind of ['poddisruptionbudget/ts-kcm', 'service/ts-kcm-metrics', 'serviceaccount/ts-kcm'])
      expect((await kubectl(['get', kind, '-n', NAMESPACE])).code).toBe(0);
    expect(await canI('update', 'leases/ts-kcm', 'kube-system')).toBe('no'); // namespaced Lease right
    expect(await canI('update', 'leases/ts-kcm', NAMESPACE)).toBe('yes');
    expect(await canI('update', 'leases/other', NAMESPACE)).toBe('no'); // only the one Lease
  }, 120_000);

  it('two replicas with the Deployment args and only its RBAC: both Ready, one leads, SIGTERM hands over', async () => {
    const token = await kubectl(['-n', NAMESPACE, 'create', 'token', SA, '--duration=1h']);
    expect(token.code).toBe(0);
    saDir = mkdtempSync(join(tmpdir(), 'ts-kcm-sa-'));
    writeFileSync(join(saDir, 'token'), token.stdout.trim(), { mode: 0o600 });
    const cluster = testKubeConfig().getCurrentCluster()!;
    const ca = cluster.caData
      ? Buffer.from(cluster.caData, 'base64').toString()
      : readFileSync(cluster.caFile!, 'utf8');
    writeFileSync(join(saDir, 'ca.crt'), ca);
    const server = new URL(cluster.server);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      KUBECONFIG: '',
      HOME: saDir, // no ~/.kube/config to fall back to
      KUBERNETES_SERVICE_HOST: server.hostname,
      KUBERNETES_SERVICE_PORT: server.port,
      TS_KCM_SERVICE_ACCOUNT_DIR: saDir,
    };
    const leader = startTsKcm(localArgs(), { kubeconfig: false, env });
    procs.push(leader);
    await leader.waitForOutput(/"message":"caches synced"/, 60_000);
    const standby = startTsKcm(localArgs(), { kubeconfig: false, env });
    procs.push(standby);
    await standby.waitForOutput(/new leader observed/, 30_000);
    expect(await readyz(leader)).toBe(200);
    expect(await readyz(standby)).toBe(200); // a standby waiting for the Lease is Ready
    expect(leader.output() + standby.output()).not.toMatch(/forbidden/i);

    const stoppedAt = Date.now();
    expect(await leader.stop('SIGTERM')).toBe(0);
    await standby.waitForOutput(/successfully acquired lease/, LEASE_MS + RETRY_MS);
    expect(Date.now() - stoppedAt).toBeLessThan(LEASE_MS + RETRY_MS);
    await standby.waitForOutput(/"message":"caches synced"/, 30_000);
    expect(standby.output()).not.toMatch(/forbidden/i);
    expect(leader.output() + standby.output()).not.toContain(token.stdout.trim());
  }, 120_000);
});
