/** Options of the rendered deployment, with their defaults written down once. */

/** A Kubernetes object as the manifests hold it: plain data, dumped to YAML as is. */
export type KubeManifest = { apiVersion: string; kind: string; metadata: Record<string, unknown> } & Record<
  string,
  unknown
>;

export interface ManifestOptions {
  /** Name of every object (ServiceAccount, roles, Deployment, Service, PDB) and of the Lease. */
  name: string;
  /**
   * Where ts-kcm runs and keeps its Lease. `ts-kcm-system`, not kube-system: the namespace can
   * enforce the `restricted` Pod Security level (kube-system cannot, it runs privileged pods),
   * the Lease Role then grants nothing over kube-system's own Leases (kube-controller-manager's,
   * kube-scheduler's), and `kubectl delete -k manifests` removes all of it. docs/deploy.md.
   */
  namespace: string;
  /** The leader-election Lease's name (`--leader-elect-resource-name`). */
  leaseName: string;
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Two: one leads, the other waits on the Lease and takes over within lease duration + retry period. */
  replicas: number;
  /** `--controllers`, as the flag takes it. */
  controllers: string[];
  /** `--shutdown-timeout` in seconds; terminationGracePeriodSeconds is this plus `shutdownSlackSeconds`. */
  shutdownTimeoutSeconds: number;
  /** Time after the drain for releasing the Lease and flushing events before the kubelet's SIGKILL. */
  shutdownSlackSeconds: number;
  metricsPort: number;
  probePort: number;
  /** The image's numeric user (the Dockerfile's and `npm run image`'s USER). */
  runAsUser: number;
  /** Container requests and memory limit; see docs/deploy.md for the measurement behind them. */
  resources: { requests: { cpu: string; memory: string }; limits: { memory: string } };
  /** Arguments appended after the generated ones. */
  extraArgs: string[];
  /** `--sharding-ring`: every replica works on its share of the keys (docs/sharding.md). Default: off. */
  shardingRing?: string;
  /**
   * kube-controller-manager's --use-service-account-credentials: one ServiceAccount, ClusterRole
   * and binding per enabled controller (its own rules); the manager's ServiceAccount keeps only
   * reads (for the shared informers), its own rights and the right to mint those tokens.
   */
  useServiceAccountCredentials: boolean;
}

export const DEFAULT_MANIFEST_OPTIONS: ManifestOptions = {
  name: 'ts-kcm',
  namespace: 'ts-kcm-system',
  leaseName: 'ts-kcm',
  image: 'ts-kcm:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  replicas: 2,
  controllers: ['*'],
  // kube-controller-manager has no drain; controller-runtime's default graceful shutdown is 30 s.
  shutdownTimeoutSeconds: 30,
  shutdownSlackSeconds: 15,
  metricsPort: 8443,
  probePort: 8081,
  runAsUser: 1000,
  // Idle RSS measured at 146 MiB (2 controllers, empty cluster; docs/deploy.md); the pod informer grows with the cluster.
  resources: { requests: { cpu: '50m', memory: '192Mi' }, limits: { memory: '512Mi' } },
  extraArgs: [],
  useServiceAccountCredentials: false,
};
