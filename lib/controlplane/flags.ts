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

/** The flag's name (`--audit-log-path` of `--audit-log-path=/x`), or undefined for a positional. */
function flagName(arg: string): string | undefined {
  if (!arg.startsWith('--')) return undefined;
  const eq = arg.indexOf('=');
  return eq < 0 ? arg : arg.slice(0, eq);
}

/**
 * BASE with EXTRA applied: a flag in EXTRA replaces every flag of the same name in BASE (so a
 * restart "with changed flags" changes rather than repeats one); new flags are appended.
 */
export function mergeFlags(base: readonly string[], extra: readonly string[]): string[] {
  const replaced = new Set(extra.map(flagName).filter((n): n is string => n !== undefined));
  return [...base.filter((a) => !replaced.has(flagName(a) ?? '')), ...extra];
}

/**
 * An audit policy (audit.k8s.io/v1, YAML) recording every write — create, update, patch,
 * delete, deletecollection — at Metadata level (who, what, when; no bodies) once the response
 * is complete, and nothing else.
 */
export function writeAuditPolicy(): string {
  return [
    'apiVersion: audit.k8s.io/v1',
    'kind: Policy',
    'omitStages: ["RequestReceived", "ResponseStarted", "Panic"]',
    'rules:',
    '  - level: Metadata',
    '    verbs: ["create", "update", "patch", "delete", "deletecollection"]',
    '  - level: None',
    '',
  ].join('\n');
}

/** kube-apiserver flags for a JSON-lines audit log at LOGPATH under the policy at POLICYFILE. */
export function auditFlags(policyFile: string, logPath: string): string[] {
  return [
    `--audit-policy-file=${policyFile}`,
    `--audit-log-path=${logPath}`,
    '--audit-log-format=json',
    // Written synchronously per event, so a test reading the file sees every finished write.
    '--audit-log-mode=blocking',
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
