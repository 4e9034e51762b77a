/**
 * --use-service-account-credentials on the real apiserver: the controller talks as its own
 * ServiceAccount (created by the manager if missing, token from TokenRequest), so the
 * apiserver authorizes it by that ServiceAccount's rights alone: without a binding its
 * writes are Forbidden naming that user; bound to exactly its declared rules, it works.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { KubeObject } from '../../lib/api/index.js';
import { createKubeClient, loadKubeConfig, type RestKubeClient } from '../../lib/client/index.js';
import { serviceCIDRController, SERVICE_CIDR_FINALIZER } from '../../controllers/servicecidr/index.js';
import {
  createTestNamespace,
  deleteNamespace,
  kubectl,
  runCommand,
  TS_KCM_MAIN,
  startTsKcm,
  testKubeconfigPath,
  uniqueName,
  waitFor,
  type TsKcmProcess,
} from '../support/cluster.js';
import { usePrivateControlPlane } from '../support/private-control-plane.js';

jest.setTimeout(120_000);

// Its server dry run allocates a ClusterIP: other files' leftover ServiceCIDRs must not be
// in the way (see private-control-plane.ts).
usePrivateControlPlane();

const ref = (group: string, resource: string) => ({
  group,
  version: 'v1',
  resource,
  kind: '',
  namespaced: false,
});
const serviceCIDRs = ref('networking.k8s.io', 'servicecidrs');
const clusterRoles = ref('rbac.authorization.k8s.io', 'clusterroles');
const clusterRoleBindings = ref('rbac.authorization.k8s.io', 'clusterrolebindings');

type Obj = KubeObject & Record<string, unknown>;

let admin: RestKubeClient;
let ns: string;
let run: TsKcmProcess;
const role = uniqueName('sa-cred');
const cidr = uniqueName('sa-cred');

beforeAll(async () => {
  admin = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }));
  ns = await createTestNamespace('sa-cred');
});

afterAll(async () => {
  await run?.stop('SIGTERM');
  await admin
    .resource(serviceCIDRs)
    .delete(cidr)
    .catch(() => undefined);
  await admin
    .resource(clusterRoleBindings)
    .delete(role)
    .catch(() => undefined);
  await admin
    .resource(clusterRoles)
    .delete(role)
    .catch(() => undefined);
  await deleteNamespace(ns);
  await admin.close();
});

describe('--use-service-account-credentials', () => {
  it('the controller is its own ServiceAccount: Forbidden without rights, working once bound', async () => {
    run = startTsKcm([
      'run',
      '--controllers=service-cidr-controller',
      '--leader-elect=false',
      '--use-service-account-credentials',
      `--service-account-credentials-namespace=${ns}`,
      '--metrics-bind-address=127.0.0.1:0',
      '--health-probe-bind-address=127.0.0.1:0',
      '-v',
      '2',
    ]);
    const user = `system:serviceaccount:${ns}:service-cidr-controller`;
    await run.waitForOutput(new RegExp(`own service account credentials[^\\n]*"user":"${user}"`), 60_000);
    await admin.resource<Obj>(serviceCIDRs).create({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: cidr },
      spec: { cidrs: ['10.232.0.0/24'] },
    });
    // Its first write is refused by RBAC, and the error names the ServiceAccount, verb and resource.
    await run.waitForOutput(
      new RegExp(`User \\\\"${user}\\\\" cannot patch resource \\\\"servicecidrs\\\\"`),
      60_000,
    );
    expect((await admin.resource<Obj>(serviceCIDRs).get(cidr)).metadata.finalizers ?? []).not.toContain(
      SERVICE_CIDR_FINALIZER,
    );

    // Exactly the controller's declared rules, bound to its ServiceAccount: the retried key succeeds.
    await admin.resource<Obj>(clusterRoles).create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: role },
      rules: serviceCIDRController.rbac,
    });
    await admin.resource<Obj>(clusterRoleBindings).create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: 'service-cidr-controller', namespace: ns }],
    });
    await waitFor(
      async () =>
        (await admin.resource<Obj>(serviceCIDRs).get(cidr)).metadata.finalizers?.includes(
          SERVICE_CIDR_FINALIZER,
        ),
      { timeoutMs: 60_000, description: `finalizer on ${cidr} written by the controller's ServiceAccount` },
    );
  });

  it('`ts-kcm manifests --use-service-account-credentials` is accepted by the apiserver (dry run)', async () => {
    const out = await runCommand(process.execPath, [
      TS_KCM_MAIN,
      'manifests',
      '--use-service-account-credentials',
      `--namespace=${ns}`,
    ]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('name: ts-kcm:service-cidr-controller');
    const applied = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input: out.stdout });
    // The only complaint allowed: objects the first test made (namespace, ServiceAccount) were
    // not made by kubectl apply.
    expect(applied.stderr.replace(/^Warning: resource \S+ is missing the .*$\n?/gm, '')).toBe('');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(
      /^serviceaccount\/service-cidr-controller (created|configured) \(server dry run\)$/m,
    );
    expect(applied.stdout).toMatch(
      /^clusterrole.rbac.authorization.k8s.io\/ts-kcm:service-cidr-controller created \(server dry run\)$/m,
    );
  });
});
