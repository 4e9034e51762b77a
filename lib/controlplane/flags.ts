/**
 * Command lines of the four components. Pure functions, so the choices are visible (and
 * unit-tested) in one place; the reasons follow envtest and the local-control-plane spec.
 */

/** Default ServiceCIDR, matching what envtest and kube-apiserver examples use for tests. */
export const DEFAULT_SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';
/** Issuer of service-account tokens; the in-cluster name of the apiserver, as kubeadm sets it. */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface EtcdFlagsInput {
  dataDir: string;
  clientPort: number;
  peerPort: number;
}

export function etcdFlags(i: EtcdFlagsInput): string[] {
  const client = `http://127.0.0.1:${i.clientPort}`;
  const peer = `http://127.0.0.1:${i.peerPort}`;
  return [
    '--name=ts-kcm',
    `--data-dir=${i.dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=ts-kcm=${peer}`,
    // A throwaway data dir: durability is worthless here, fsync latency is not.
    '--unsafe-no-fsync=true',
  ];
}

export interface ApiserverFlagsInput {
  etcdURL: string;
  securePort: number;
  certDir: string;
  tokenFile: string;
  /** CA whose client certificates the apiserver accepts (the kind-style admin credential). */
  clientCAFile: string;
  serviceAccountPublicKey: string;
  serviceAccountPrivateKey: string;
  serviceClusterIPRange: string;
}

export function apiserverFlags(i: ApiserverFlagsInput): string[] {
  return [
    `--etcd-servers=${i.etcdURL}`,
    `--secure-port=${i.securePort}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    // It self-signs a serving certificate (and CA) here; the kubeconfig trusts that CA.
    `--cert-dir=${i.certDir}`,
    `--service-cluster-ip-range=${i.serviceClusterIPRange}`,
    '--authorization-mode=RBAC',
    `--token-auth-file=${i.tokenFile}`,
    `--client-ca-file=${i.clientCAFile}`,
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${i.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${i.serviceAccountPrivateKey}`,
    // No token controller mounts tokens and no kubelet or node-lifecycle controller ever
    // clears the not-ready taint, so these two admission plugins would block every pod.
    '--disable-admission-plugins=ServiceAccount,TaintNodesByCondition',
    // No kubelet-visible address to publish for the `kubernetes` Service.
    '--endpoint-reconciler-type=none',
    '--allow-privileged=true',
    '--profiling=false',
  ];
}

export function schedulerFlags(kubeconfig: string): string[] {
  return [`--kubeconfig=${kubeconfig}`, '--leader-elect=false', '--secure-port=0'];
}

export interface ControllerManagerFlagsInput {
  kubeconfig: string;
  controllers: string;
  serviceAccountPrivateKey: string;
  rootCAFile: string;
}

export function controllerManagerFlags(i: ControllerManagerFlagsInput): string[] {
  return [
    `--kubeconfig=${i.kubeconfig}`,
    `--controllers=${i.controllers}`,
    '--leader-elect=false',
    '--secure-port=0',
    '--use-service-account-credentials=false',
    `--service-account-private-key-file=${i.serviceAccountPrivateKey}`,
    `--root-ca-file=${i.rootCAFile}`,
  ];
}
