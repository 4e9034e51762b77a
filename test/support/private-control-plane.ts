/**
 * A test file that must not see what other tests leave in the run's shared control plane
 * (Terminating namespaces full of objects, ServiceCIDRs stuck with a finalizer — which make
 * kube-apiserver's dry-run ClusterIP allocation answer "allocator not ready" whenever it picks
 * such a CIDR's allocator) calls this at the top: its own etcd + kube-apiserver for the file,
 * and TS_KCM_TEST_KUBECONFIG / TS_KCM_TEST_DIR point at it while the file runs, so every
 * helper of test/support/cluster.ts follows.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { startControlPlane, type TestControlPlane } from '../../lib/testing.js';

export function usePrivateControlPlane(opts: { scheduler?: boolean; crds?: string[] } = {}): void {
  let cp: TestControlPlane | undefined;
  const saved: Record<string, string | undefined> = {};
  beforeAll(async () => {
    cp = await startControlPlane(opts);
    for (const k of ['TS_KCM_TEST_KUBECONFIG', 'TS_KCM_TEST_DIR']) saved[k] = process.env[k];
    process.env.TS_KCM_TEST_KUBECONFIG = cp.kubeconfigPath;
    process.env.TS_KCM_TEST_DIR = cp.dir;
  }, 120_000);
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await cp?.stop();
  }, 60_000);
}
