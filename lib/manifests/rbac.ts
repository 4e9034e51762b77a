/**
 * The RBAC objects: one ClusterRole that is the union of what the enabled controllers
 * declare (plus the events the manager records), and a Role in the manager's own namespace
 * for the leader-election Lease, so ts-kcm holds no cluster-wide rights on leases.
 */
import type { ControllerDefinition, PolicyRule } from '../controller/index.js';
import type { KubeManifest, ManifestOptions } from './types.js';

const RBAC_API = 'rbac.authorization.k8s.io/v1';

/** A rule that may name the objects it covers (`resourceNames`), as the Lease rule does. */
export interface NamedPolicyRule extends PolicyRule {
  resourceNames?: string[];
}

/**
 * What the manager itself needs cluster-wide: the events it records (in the objects'
 * namespaces), and the reviews with which --metrics-secure checks each scrape (what the
 * system:auth-delegator ClusterRole grants kube-controller-manager).
 */
export const managerClusterRules: PolicyRule[] = [
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch', 'update'] },
  { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
];

/**
 * The leader-election Lease: the elector gets, creates and updates it (release is an update).
 * `create` cannot be limited by name (the name is not known when it is authorized), so it is
 * its own rule; get and update are limited to the one Lease.
 */
export function leaseRules(leaseName: string, shardingRing?: string): NamedPolicyRule[] {
  // A sharding ring: every replica holds a Lease named after its own identity (not known when
  // the role is written) and lists and watches the ring's, so the Role covers the namespace's
  // Leases — which, in ts-kcm's own namespace, are only ts-kcm's.
  if (shardingRing)
    return [
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        verbs: ['create', 'get', 'list', 'update', 'watch'],
      },
    ];
  return [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    {
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      resourceNames: [leaseName],
      verbs: ['get', 'update'],
    },
  ];
}

/** Merge rules with the same apiGroup and resource into one rule each; sorted, for a stable file. */
export function mergeRules(rules: PolicyRule[]): PolicyRule[] {
  const byTarget = new Map<string, PolicyRule>();
  for (const rule of rules) {
    for (const group of rule.apiGroups) {
      for (const resource of rule.resources) {
        const key = `${group}\u0000${resource}`;
        const existing = byTarget.get(key) ?? { apiGroups: [group], resources: [resource], verbs: [] };
        existing.verbs = [...new Set([...existing.verbs, ...rule.verbs])].sort();
        byTarget.set(key, existing);
      }
    }
  }
  return [...byTarget.values()].sort(
    (a, b) =>
      a.apiGroups[0]!.localeCompare(b.apiGroups[0]!) || a.resources[0]!.localeCompare(b.resources[0]!),
  );
}

/** Throws on `*` anywhere: every right ts-kcm holds is named. */
export function assertNoWildcards(rules: PolicyRule[]): void {
  for (const rule of rules) {
    for (const field of ['apiGroups', 'resources', 'verbs'] as const) {
      if (rule[field].some((v) => v.includes('*'))) {
        throw new Error(`RBAC rule ${JSON.stringify(rule)} has a wildcard in ${field}`);
      }
    }
  }
}

export function clusterRules(rules: PolicyRule[]): PolicyRule[] {
  const merged = mergeRules([...managerClusterRules, ...rules]);
  assertNoWildcards(merged);
  return merged;
}

export function rbacObjects(rules: PolicyRule[], o: ManifestOptions): KubeManifest[] {
  const subject = { kind: 'ServiceAccount', name: o.name, namespace: o.namespace };
  const roleRef = (kind: string) => ({ apiGroup: 'rbac.authorization.k8s.io', kind, name: o.name });
  const labels = { 'app.kubernetes.io/name': o.name };
  return [
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: o.name, namespace: o.namespace, labels },
    },
    {
      apiVersion: RBAC_API,
      kind: 'ClusterRole',
      metadata: { name: o.name, labels },
      rules: clusterRules(rules),
    },
    {
      apiVersion: RBAC_API,
      kind: 'ClusterRoleBinding',
      metadata: { name: o.name, labels },
      roleRef: roleRef('ClusterRole'),
      subjects: [subject],
    },
    {
      // Bind a scraper (e.g. Prometheus's ServiceAccount) to this to read the secure /metrics.
      apiVersion: RBAC_API,
      kind: 'ClusterRole',
      metadata: { name: `${o.name}-metrics-reader`, labels },
      rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }],
    },
    {
      apiVersion: RBAC_API,
      kind: 'Role',
      metadata: { name: `${o.name}-leader-election`, namespace: o.namespace, labels },
      rules: leaseRules(o.leaseName, o.shardingRing),
    },
    {
      apiVersion: RBAC_API,
      kind: 'RoleBinding',
      metadata: { name: `${o.name}-leader-election`, namespace: o.namespace, labels },
      roleRef: { ...roleRef('Role'), name: `${o.name}-leader-election` },
      subjects: [subject],
    },
  ];
}

const READ_VERBS = new Set(['get', 'list', 'watch']);

/** The read part of rules: what the shared informers (the manager's own client) need. */
export function readRules(rules: PolicyRule[]): PolicyRule[] {
  return rules
    .map((r) => ({ ...r, verbs: r.verbs.filter((v) => READ_VERBS.has(v)) }))
    .filter((r) => r.verbs.length > 0);
}

/**
 * --use-service-account-credentials: per enabled controller a ServiceAccount named as the
 * controller, a ClusterRole `<name>:<controller>` with exactly its declared rules and the
 * binding; plus a Role that lets the manager mint tokens for exactly those ServiceAccounts.
 */
export function perControllerRbacObjects(
  enabled: ControllerDefinition[],
  o: ManifestOptions,
): KubeManifest[] {
  const labels = { 'app.kubernetes.io/name': o.name };
  const objects: KubeManifest[] = [];
  for (const def of enabled) {
    const roleName = `${o.name}:${def.name}`;
    objects.push(
      {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: def.name, namespace: o.namespace, labels },
      },
      {
        apiVersion: RBAC_API,
        kind: 'ClusterRole',
        metadata: { name: roleName, labels },
        rules: mergeRules(def.rbac),
      },
      {
        apiVersion: RBAC_API,
        kind: 'ClusterRoleBinding',
        metadata: { name: roleName, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName },
        subjects: [{ kind: 'ServiceAccount', name: def.name, namespace: o.namespace }],
      },
    );
  }
  const tokenRole = `${o.name}-controller-tokens`;
  objects.push(
    {
      apiVersion: RBAC_API,
      kind: 'Role',
      metadata: { name: tokenRole, namespace: o.namespace, labels },
      rules: [
        {
          apiGroups: [''],
          resources: ['serviceaccounts/token'],
          resourceNames: enabled.map((d) => d.name).sort(),
          verbs: ['create'],
        },
      ],
    },
    {
      apiVersion: RBAC_API,
      kind: 'RoleBinding',
      metadata: { name: tokenRole, namespace: o.namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: tokenRole },
      subjects: [{ kind: 'ServiceAccount', name: o.name, namespace: o.namespace }],
    },
  );
  return objects;
}
