/**
 * The ground every other integration test stands on: Node 24 and a REAL kube-apiserver
 * v1.35 (server-side validation, the default ServiceCIDR) reachable through the harness.
 */
import { describe, expect, jest, test } from '@jest/globals';
import { ApiException, CoreV1Api, VersionApi } from '@kubernetes/client-node';
import {
  createTestNamespace,
  deleteNamespace,
  kubectl,
  startTsKcm,
  testKubeConfig,
  uniqueName,
  waitFor,
} from '../support/cluster.js';

jest.setTimeout(120_000);

describe('foundation', () => {
  test('runs on Node 24 or newer', () => {
    const major = Number(process.versions.node.split('.')[0]);
    expect(major).toBeGreaterThanOrEqual(24);
  });

  test('talks to a real kube-apiserver v1.35', async () => {
    const version = await testKubeConfig().makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toMatch(/^v1\.35\.\d+$/);
    expect(version.major).toBe('1');
    expect(version.minor).toBe('35');
  });

  test('the apiserver validates objects server-side (422 Invalid)', async () => {
    const ns = await createTestNamespace('foundation');
    try {
      const core = testKubeConfig().makeApiClient(CoreV1Api);
      const err = await core
        .createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'Not_A_Valid_Name' } } })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(ApiException);
      const apiErr = err as ApiException<string>;
      expect(apiErr.code).toBe(422);
      const status = JSON.parse(apiErr.body) as { reason: string; details: { kind: string; name: string } };
      expect(status.reason).toBe('Invalid');
      expect(status.details).toMatchObject({ kind: 'ConfigMap', name: 'Not_A_Valid_Name' });
    } finally {
      await deleteNamespace(ns);
    }
  });

  test('serves the default ServiceCIDR "kubernetes" from --service-cluster-ip-range', async () => {
    const res = await kubectl([
      'get',
      'servicecidrs',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.spec.cidrs[0]}{"\\n"}{end}',
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.split('\n')).toContain('kubernetes=10.0.0.0/24');
  });

  test('test namespaces are created and deleted through the helpers', async () => {
    const ns = await createTestNamespace('Helpers_Check');
    expect(ns).toMatch(/^helpers-check-[a-z0-9]+-[0-9a-f]{6}$/);
    const got = await kubectl(['get', 'namespace', ns, '-o', 'jsonpath={.status.phase}']);
    expect(got.stdout).toBe('Active');
    await deleteNamespace(ns);
    // No namespace controller runs here, so the namespace stays Terminating.
    await waitFor(
      async () =>
        (await kubectl(['get', 'namespace', ns, '-o', 'jsonpath={.status.phase}'])).stdout === 'Terminating',
      { description: `namespace ${ns} terminating` },
    );
    await deleteNamespace(ns); // deleting twice is not an error
  });

  test('uniqueName gives distinct DNS labels', () => {
    const names = new Set(Array.from({ length: 50 }, () => uniqueName('x'.repeat(80))));
    expect(names.size).toBe(50);
    for (const n of names) expect(n).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  });

  test('startTsKcm runs the built CLI', async () => {
    const cli = startTsKcm(['version'], { kubeconfig: false });
    const m = await cli.waitForOutput(/kubernetes (v1\.35\.\d+)/);
    expect(m[1]).toMatch(/^v1\.35\./);
    expect(await cli.exited()).toBe(0);
    expect(cli.output()).toContain(`node ${process.version}`);
  });
});
