/**
 * The shipped manifests against the real apiserver: the kustomize base and the kind overlay
 * pass a server-side dry run, and the base applies for real (no kubelet here, so its pods
 * stay Pending; what is checked is that every rendered object is accepted as written).
 */
import { describe, expect, it } from '@jest/globals';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubectl } from '../support/cluster.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NAMESPACE = 'ts-kcm-system';

describe('manifests/ (kustomize base and kind overlay)', () => {
  it('pass kubectl apply --dry-run=server -k, and the base applies for real', async () => {
    // A dry run cannot create the Namespace its namespaced objects need: make it first.
    const ns = await kubectl(['create', 'namespace', NAMESPACE, '--save-config']);
    expect(ns.code === 0 || /AlreadyExists/.test(ns.stderr)).toBe(true);
    for (const dir of ['manifests', 'manifests/overlays/kind']) {
      const dry = await kubectl(['apply', '--dry-run=server', '-k', join(repoRoot, dir)]);
      expect({ dir, stderr: dry.stderr, code: dry.code }).toEqual({ dir, stderr: '', code: 0 });
      expect(dry.stdout).toMatch(/deployment\.apps\/ts-kcm created \(server dry run\)/);
    }
    const applied = await kubectl(['apply', '-k', join(repoRoot, 'manifests')]);
    expect({ stderr: applied.stderr, code: applied.code }).toEqual({ stderr: '', code: 0 });
    const deployment = await kubectl(['get', 'deployment', 'ts-kcm', '-n', NAMESPACE, '-o', 'json']);
    expect(deployment.code).toBe(0);
    const spec = JSON.parse(deployment.stdout).spec;
    expect(spec.replicas).toBe(2);
    expect(spec.template.spec.containers[0].securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    const pdb = await kubectl(['get', 'poddisruptionbudget', 'ts-kcm', '-n', NAMESPACE]);
    expect(pdb.code).toBe(0);
    const lease = await kubectl([
      'auth',
      'can-i',
      'update',
      'leases/ts-kcm',
      '-n',
      'kube-system',
      '--as',
      `system:serviceaccount:${NAMESPACE}:ts-kcm`,
    ]);
    expect(lease.stdout.trim()).toBe('no'); // the Lease right is namespaced to ts-kcm-system
    const own = await kubectl([
      'auth',
      'can-i',
      'update',
      'leases/ts-kcm',
      '-n',
      NAMESPACE,
      '--as',
      `system:serviceaccount:${NAMESPACE}:ts-kcm`,
    ]);
    expect(own.stdout.trim()).toBe('yes');
    await kubectl(['delete', '-k', join(repoRoot, 'manifests'), '--wait=false']);
  }, 120_000);
});
