/**
 * `--metrics-secure` on the real apiserver: /metrics over HTTPS, each scrape authenticated
 * by a TokenReview and authorized by a SubjectAccessReview, as kube-controller-manager's
 * secure port. Anonymous scrapes are refused (401), a ServiceAccount without the right is
 * forbidden (403), one bound to a metrics-reader ClusterRole is let in.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeObject } from '../../lib/api/index.js';
import { createKubeClient, loadKubeConfig, type RestKubeClient } from '../../lib/client/index.js';
import { issueCertificate } from '../../lib/pki/x509.js';
import {
  createTestNamespace,
  deleteNamespace,
  startTsKcm,
  testKubeconfigPath,
  uniqueName,
  type TsKcmProcess,
} from '../support/cluster.js';

jest.setTimeout(120_000);

const rbac = (resource: string, namespaced = false) => ({
  group: 'rbac.authorization.k8s.io',
  version: 'v1',
  resource,
  kind: '',
  namespaced,
});

let admin: RestKubeClient;
let ns: string;
let dir: string;
let cert: string;
let run: TsKcmProcess;
let address: string;
const reader = uniqueName('metrics-reader');

function scrape(token?: string): Promise<{ status: number; body: string }> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    address.slice(address.lastIndexOf(':') + 1),
  ];
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: host === '::' || host === '[::]' ? '127.0.0.1' : host,
        port: Number(port),
        path: '/metrics',
        ca: cert,
        servername: 'localhost',
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function serviceAccountToken(name: string): Promise<string> {
  await admin
    .resource({
      group: '',
      version: 'v1',
      resource: 'serviceaccounts',
      kind: 'ServiceAccount',
      namespaced: true,
    })
    .create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
  const res = await admin.requestRaw('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  });
  expect(res.status).toBe(201);
  return (JSON.parse(res.body) as { status: { token: string } }).status.token;
}

beforeAll(async () => {
  admin = createKubeClient(loadKubeConfig({ kubeconfig: testKubeconfigPath() }));
  ns = await createTestNamespace('secure-metrics');
  dir = mkdtempSync(join(tmpdir(), 'ts-kcm-secure-metrics-'));
  const now = Date.now();
  const serving = issueCertificate({
    subject: { commonName: 'localhost' },
    isCA: false,
    usage: 'server',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
  });
  cert = serving.certPem;
  writeFileSync(join(dir, 'tls.crt'), serving.certPem);
  writeFileSync(join(dir, 'tls.key'), serving.keyPem, { mode: 0o600 });
  await admin.resource<KubeObject & { rules: unknown[] }>(rbac('clusterroles')).create({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: reader },
    rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }],
  });
  run = startTsKcm([
    'run',
    '--controllers=service-cidr-controller',
    '--leader-elect=false',
    '--metrics-secure',
    `--metrics-cert-dir=${dir}`,
    '--metrics-bind-address=127.0.0.1:0',
    '--health-probe-bind-address=127.0.0.1:0',
  ]);
  address = (await run.waitForOutput(/"address":"([^"]+)"[^\n]*"message":"serving metrics"/))[1]!;
});

afterAll(async () => {
  await run?.stop('SIGTERM');
  await admin
    .resource(rbac('clusterroles'))
    .delete(reader)
    .catch(() => undefined);
  await admin
    .resource(rbac('clusterrolebindings'))
    .delete(reader)
    .catch(() => undefined);
  await deleteNamespace(ns);
  await admin.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('--metrics-secure', () => {
  it('refuses an anonymous scrape and a token the apiserver does not know with 401', async () => {
    expect(await scrape()).toEqual({ status: 401, body: 'Unauthorized\n' });
    expect((await scrape('not-a-token')).status).toBe(401);
  });

  it('forbids a ServiceAccount without the right (403 naming it)', async () => {
    const token = await serviceAccountToken('no-rights');
    const res = await scrape(token);
    expect(res.status).toBe(403);
    expect(res.body).toContain(`system:serviceaccount:${ns}:no-rights`);
  });

  it('lets in a ServiceAccount bound to a metrics-reader ClusterRole', async () => {
    const token = await serviceAccountToken('scraper');
    await admin
      .resource<KubeObject & { roleRef: unknown; subjects: unknown[] }>(rbac('clusterrolebindings'))
      .create({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: reader },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: reader },
        subjects: [{ kind: 'ServiceAccount', name: 'scraper', namespace: ns }],
      });
    const res = await scrape(token);
    expect(res.status).toBe(200);
    expect(res.body).toContain('# TYPE ts_kcm_reconcile_total counter');
  });
});
