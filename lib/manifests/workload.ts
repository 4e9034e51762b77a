/**
 * The Namespace, Deployment, metrics Service and PodDisruptionBudget. The Deployment's args
 * are the single place the in-cluster command line is written; the integration test starts
 * ts-kcm with exactly these (bind addresses aside).
 */
import type { KubeManifest, ManifestOptions } from './types.js';

export function labelsOf(o: ManifestOptions): Record<string, string> {
  return { 'app.kubernetes.io/name': o.name, 'app.kubernetes.io/component': 'controller-manager' };
}

/** `ts-kcm run` as the Deployment runs it. The Lease lives in the manager's own namespace. */
export function deploymentArgs(o: ManifestOptions): string[] {
  return [
    'run',
    `--controllers=${o.controllers.join(',')}`,
    ...(o.shardingRing
      ? ['--leader-elect=false', `--sharding-ring=${o.shardingRing}`]
      : ['--leader-elect=true', `--leader-elect-resource-name=${o.leaseName}`]),
    `--leader-elect-resource-namespace=${o.namespace}`,
    `--metrics-bind-address=:${o.metricsPort}`,
    '--metrics-secure=true',
    `--health-probe-bind-address=:${o.probePort}`,
    `--shutdown-timeout=${o.shutdownTimeoutSeconds}s`,
    ...(o.useServiceAccountCredentials
      ? ['--use-service-account-credentials=true', `--service-account-credentials-namespace=${o.namespace}`]
      : []),
    ...o.extraArgs,
  ];
}

export function namespaceObject(o: ManifestOptions): KubeManifest {
  const level = { enforce: 'restricted', audit: 'restricted', warn: 'restricted' };
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: o.namespace,
      labels: Object.fromEntries(
        Object.entries(level).map(([mode, value]) => [`pod-security.kubernetes.io/${mode}`, value]),
      ),
    },
  };
}

export function deploymentObject(o: ManifestOptions): KubeManifest {
  const labels = labelsOf(o);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: o.name, namespace: o.namespace, labels },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: labels },
      // A standby is Ready, so a surge pod becomes Ready and the old one can go: never fewer than replicas.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: o.name,
          terminationGracePeriodSeconds: o.shutdownTimeoutSeconds + o.shutdownSlackSeconds,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: o.runAsUser,
            runAsGroup: o.runAsUser,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          // Preferred, not required: a one-node cluster (kind) must still run both replicas.
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: labels },
            },
          ],
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: {
                    topologyKey: 'kubernetes.io/hostname',
                    labelSelector: { matchLabels: labels },
                  },
                },
              ],
            },
          },
          containers: [
            {
              name: o.name,
              image: o.image,
              imagePullPolicy: o.imagePullPolicy,
              args: deploymentArgs(o),
              ports: [
                { name: 'metrics', containerPort: o.metricsPort, protocol: 'TCP' },
                { name: 'probes', containerPort: o.probePort, protocol: 'TCP' },
              ],
              // /healthz turns red only when the process is wedged, so a slow apiserver restarts nothing.
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'probes' },
                initialDelaySeconds: 10,
                periodSeconds: 10,
                failureThreshold: 3,
              },
              readinessProbe: { httpGet: { path: '/readyz', port: 'probes' }, periodSeconds: 5 },
              resources: o.resources,
              securityContext: {
                runAsNonRoot: true,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
            },
          ],
        },
      },
    },
  };
}

export function metricsServiceObject(o: ManifestOptions): KubeManifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `${o.name}-metrics`, namespace: o.namespace, labels: labelsOf(o) },
    spec: {
      type: 'ClusterIP',
      selector: labelsOf(o),
      ports: [{ name: 'metrics', port: o.metricsPort, targetPort: 'metrics', protocol: 'TCP' }],
    },
  };
}

/** At most one replica down for a voluntary disruption (a drain): the other keeps or takes the Lease. */
export function podDisruptionBudgetObject(o: ManifestOptions): KubeManifest {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: o.name, namespace: o.namespace, labels: labelsOf(o) },
    spec: { maxUnavailable: 1, selector: { matchLabels: labelsOf(o) } },
  };
}
