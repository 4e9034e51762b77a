import { describe, expect, test } from '@jest/globals';
import {
  apiserverFlags,
  auditFlags,
  controllerManagerFlags,
  etcdFlags,
  mergeFlags,
  schedulerFlags,
  writeAuditPolicy,
} from './flags.js';

describe('component flags', () => {
  test('etcd listens on loopback only, on the given ports, without fsync', () => {
    expect(etcdFlags({ dataDir: '/d/etcd', clientPort: 2001, peerPort: 2002 })).toEqual([
      '--name=ts-kcm',
      '--data-dir=/d/etcd',
      '--listen-client-urls=http://127.0.0.1:2001',
      '--advertise-client-urls=http://127.0.0.1:2001',
      '--listen-peer-urls=http://127.0.0.1:2002',
      '--initial-advertise-peer-urls=http://127.0.0.1:2002',
      '--initial-cluster=ts-kcm=http://127.0.0.1:2002',
      '--unsafe-no-fsync=true',
    ]);
  });

  test('kube-apiserver gets the spec flags', () => {
    const flags = apiserverFlags({
      etcdURL: 'http://127.0.0.1:2001',
      securePort: 6443,
      certDir: '/d/pki/serving',
      tokenFile: '/d/pki/token.csv',
      clientCAFile: '/d/pki/client-ca.crt',
      serviceAccountPublicKey: '/d/pki/sa.pub',
      serviceAccountPrivateKey: '/d/pki/sa.key',
      serviceClusterIPRange: '10.0.0.0/24',
    });
    expect(flags).toEqual(
      expect.arrayContaining([
        '--etcd-servers=http://127.0.0.1:2001',
        '--secure-port=6443',
        '--bind-address=127.0.0.1',
        '--cert-dir=/d/pki/serving',
        '--service-cluster-ip-range=10.0.0.0/24',
        '--authorization-mode=RBAC',
        '--token-auth-file=/d/pki/token.csv',
        '--client-ca-file=/d/pki/client-ca.crt',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        '--service-account-key-file=/d/pki/sa.pub',
        '--service-account-signing-key-file=/d/pki/sa.key',
        '--disable-admission-plugins=ServiceAccount,TaintNodesByCondition',
        '--endpoint-reconciler-type=none',
      ]),
    );
  });

  test('kube-scheduler and kube-controller-manager run without leader election or serving port', () => {
    expect(schedulerFlags('/d/kubeconfig')).toEqual([
      '--kubeconfig=/d/kubeconfig',
      '--leader-elect=false',
      '--secure-port=0',
    ]);
    expect(
      controllerManagerFlags({
        kubeconfig: '/d/kubeconfig',
        controllers: 'service-cidr-controller',
        serviceAccountPrivateKey: '/d/pki/sa.key',
        rootCAFile: '/d/pki/serving/apiserver.crt',
      }),
    ).toEqual([
      '--kubeconfig=/d/kubeconfig',
      '--controllers=service-cidr-controller',
      '--leader-elect=false',
      '--secure-port=0',
      '--use-service-account-credentials=false',
      '--service-account-private-key-file=/d/pki/sa.key',
      '--root-ca-file=/d/pki/serving/apiserver.crt',
    ]);
  });

  test('extra flags replace a default of the same name and append new ones', () => {
    const base = ['--secure-port=6443', '--profiling=false', '--allow-privileged=true', 'positional'];
    expect(mergeFlags(base, ['--profiling=true', '--max-requests-inflight=5'])).toEqual([
      '--secure-port=6443',
      '--allow-privileged=true',
      'positional',
      '--profiling=true',
      '--max-requests-inflight=5',
    ]);
    // Replacing again (a second restart with changed flags) leaves one copy, not two.
    const twice = mergeFlags(mergeFlags(base, ['--max-requests-inflight=5']), ['--max-requests-inflight=9']);
    expect(twice.filter((f) => f.startsWith('--max-requests-inflight'))).toEqual([
      '--max-requests-inflight=9',
    ]);
    expect(mergeFlags(base, [])).toEqual(base);
  });

  test('the audit log is JSON lines at Metadata level for writes only', () => {
    expect(auditFlags('/d/audit-policy.yaml', '/d/audit.log')).toEqual([
      '--audit-policy-file=/d/audit-policy.yaml',
      '--audit-log-path=/d/audit.log',
      '--audit-log-format=json',
      '--audit-log-mode=blocking',
    ]);
    const policy = writeAuditPolicy();
    expect(policy).toContain('apiVersion: audit.k8s.io/v1');
    expect(policy).toMatch(
      /- level: Metadata\n {4}verbs: \["create", "update", "patch", "delete", "deletecollection"\]/,
    );
    expect(policy).not.toContain('RequestResponse');
    // Reads are not logged: the catch-all rule after the write rule is None.
    expect(policy.trimEnd().endsWith('- level: None')).toBe(true);
  });
});
