/**
 * The credential a kind user meets: a kubeconfig with client-certificate-data/client-key-data
 * from the cluster's client CA. The test control plane issues one (kubeconfig-cert beside the
 * token kubeconfig); these tests prove our client authenticates with it on the real
 * apiserver, that a certificate rotated on disk changes who the apiserver sees, and that
 * `ts-kcm run` reconciles with it.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '../../lib/api/index.js';
import { createKubeClient, loadKubeConfig, type ResourceRef } from '../../lib/client/index.js';
import { issueClientCertificate } from '../../lib/controlplane/index.js';
import { startTsKcm, uniqueName, waitFor } from '../support/cluster.js';

jest.setTimeout(120_000);

const selfSubjectReviews: ResourceRef = {
  group: 'authentication.k8s.io',
  version: 'v1',
  resource: 'selfsubjectreviews',
  kind: 'SelfSubjectReview',
  namespaced: false,
};

const serviceCIDRs: ResourceRef = {
  group: 'networking.k8s.io',
  version: 'v1',
  resource: 'servicecidrs',
  kind: 'ServiceCIDR',
  namespaced: false,
};

interface SelfSubjectReview extends KubeObject {
  status?: { userInfo?: { username?: string; groups?: string[] } };
}

function controlPlaneDir(): string {
  const dir = process.env.TS_KCM_TEST_DIR;
  if (!dir) throw new Error('TS_KCM_TEST_DIR is not set: run with the integration project');
  return dir;
}

async function whoAmI(kubeconfig: string): Promise<SelfSubjectReview['status']> {
  const client = createKubeClient(loadKubeConfig({ kubeconfig }), { userAgent: 'ts-kcm-cert-test' });
  try {
    const review = await client
      .resource<SelfSubjectReview>(selfSubjectReviews)
      .create({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview', metadata: {} });
    return review.status;
  } finally {
    await client.close();
  }
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ts-kcm-cert-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('client certificates on the real apiserver', () => {
  it('the kind-style kubeconfig (client-certificate-data) authenticates as the admin', async () => {
    const kubeconfig = join(controlPlaneDir(), 'kubeconfig-cert');
    expect(readFileSync(kubeconfig, 'utf8')).toMatch(/client-certificate-data: /);
    const who = await whoAmI(kubeconfig);
    expect(who?.userInfo?.username).toBe('ts-kcm-admin');
    expect(who?.userInfo?.groups).toContain('system:masters');
  });

  it('a client certificate file rotated on disk changes the identity the apiserver sees', async () => {
    const caKey = readFileSync(join(controlPlaneDir(), 'pki', 'client-ca.key'), 'utf8');
    const base = readFileSync(join(controlPlaneDir(), 'kubeconfig-cert'), 'utf8');
    const certFile = join(work, 'client.crt');
    const keyFile = join(work, 'client.key');
    const validity = { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000) };
    const write = (user: string) => {
      const c = issueClientCertificate(
        caKey,
        { commonName: user, organizations: ['system:masters'] },
        validity,
      );
      writeFileSync(certFile, c.certPem);
      writeFileSync(keyFile, c.keyPem, { mode: 0o600 });
    };
    write('rotation-before');
    const kubeconfig = join(work, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      base
        .replace(/client-certificate-data: .*/, `client-certificate: ${certFile}`)
        .replace(/client-key-data: .*/, `client-key: ${keyFile}`),
    );
    const client = createKubeClient(loadKubeConfig({ kubeconfig }), { userAgent: 'ts-kcm-cert-test' });
    const reviews = client.resource<SelfSubjectReview>(selfSubjectReviews);
    const review = () =>
      reviews.create({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview', metadata: {} });
    try {
      expect((await review()).status?.userInfo?.username).toBe('rotation-before');
      write('rotation-after');
      // The same client, with its keep-alive connection from the first request: the next
      // request must present the new certificate.
      expect((await review()).status?.userInfo?.username).toBe('rotation-after');
    } finally {
      await client.close();
    }
  });

  it('ts-kcm run reconciles with the kind-style kubeconfig', async () => {
    const kubeconfig = join(controlPlaneDir(), 'kubeconfig-cert');
    const name = uniqueName('cert-run');
    const client = createKubeClient(loadKubeConfig({ kubeconfig }), { userAgent: 'ts-kcm-cert-test' });
    const cidrs = client.resource<KubeObject & { spec?: { cidrs?: string[] } }>(serviceCIDRs);
    const run = startTsKcm(
      [
        'run',
        '--controllers=service-cidr-controller',
        '--leader-elect=false',
        '--metrics-bind-address=127.0.0.1:0',
        '--health-probe-bind-address=127.0.0.1:0',
      ],
      { kubeconfig },
    );
    try {
      await cidrs.create({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'ServiceCIDR',
        metadata: { name },
        spec: { cidrs: ['10.231.0.0/24'] },
      });
      await waitFor(
        async () =>
          (await cidrs.get(name)).metadata.finalizers?.includes('networking.k8s.io/service-cidr-finalizer'),
        { timeoutMs: 60_000, description: `finalizer on ServiceCIDR ${name}` },
      );
    } finally {
      await run.stop('SIGTERM');
      await cidrs.delete(name).catch(() => undefined);
      await client.close();
    }
  });
});
