import { describe, expect, it } from '@jest/globals';
import type { ControllerDefinition, PolicyRule } from '../controller/index.js';
import {
  DEFAULT_MANIFEST_OPTIONS,
  deploymentArgs,
  mergeRules,
  renderManifestFiles,
  renderManifests,
  renderManifestsYaml,
  type KubeManifest,
} from './index.js';

function definition(name: string, rbac: PolicyRule[]): ControllerDefinition {
  return { name, enabledByDefault: true, flags: [], rbac, create: () => ({ run: async () => undefined }) };
}

const a = definition('a-controller', [
  { apiGroups: [''], resources: ['pods'], verbs: ['watch', 'list', 'get'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] },
]);
const b = definition('b-controller', [
  { apiGroups: ['networking.k8s.io'], resources: ['servicecidrs'], verbs: ['get'] },
]);

function byKind(objects: KubeManifest[], kind: string): KubeManifest {
  const found = objects.find((o) => o.kind === kind);
  if (!found) throw new Error(`no ${kind}`);
  return found;
}

describe('renderManifests', () => {
  const objects = renderManifests({ definitions: [a, b] });

  it('renders every object, Namespace first, all in one namespace', () => {
    expect(objects.map((o) => o.kind)).toEqual([
      'Namespace',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'ClusterRole',
      'Role',
      'RoleBinding',
      'Deployment',
      'Service',
      'PodDisruptionBudget',
    ]);
    for (const o of objects.filter(
      (o) => !['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind),
    ))
      expect(o.metadata.namespace).toBe('ts-kcm-system');
  });

  it('grants the enabled controllers their rules, merged and sorted, and no lease rights cluster-wide', () => {
    const rules = byKind(objects, 'ClusterRole').rules as PolicyRule[];
    expect(rules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
      { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch', 'update'] },
      { apiGroups: ['networking.k8s.io'], resources: ['servicecidrs'], verbs: ['get'] },
    ]);
    const reader = objects.find((o) => o.metadata.name === 'ts-kcm-metrics-reader');
    expect(reader?.rules).toEqual([{ nonResourceURLs: ['/metrics'], verbs: ['get'] }]);
    const onlyA = byKind(
      renderManifests({ definitions: [a, b], controllers: ['*', '-b-controller'] }),
      'ClusterRole',
    );
    expect(JSON.stringify(onlyA.rules)).not.toContain('servicecidrs');
  });

  it('with a sharding ring, lets every replica list and watch the namespace’s Leases and runs the ring', () => {
    const sharded = renderManifests({ definitions: [a], shardingRing: 'workers' });
    expect(byKind(sharded, 'Role').rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        verbs: ['create', 'get', 'list', 'update', 'watch'],
      },
    ]);
    const args = deploymentArgs({ ...DEFAULT_MANIFEST_OPTIONS, shardingRing: 'workers' });
    expect(args).toContain('--sharding-ring=workers');
    expect(args).toContain('--leader-elect=false');
  });

  it('puts the Lease rights in a Role of its own namespace, get/update limited to the one Lease', () => {
    const role = byKind(objects, 'Role');
    expect(role.metadata.namespace).toBe('ts-kcm-system');
    expect(role.rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['ts-kcm'],
        verbs: ['get', 'update'],
      },
    ]);
    const binding = byKind(objects, 'RoleBinding');
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'ts-kcm', namespace: 'ts-kcm-system' },
    ]);
  });

  it('refuses a wildcard rule', () => {
    const wild = definition('wild', [{ apiGroups: [''], resources: ['*'], verbs: ['get'] }]);
    expect(() => renderManifests({ definitions: [wild] })).toThrow(/wildcard in resources/);
  });

  it('runs the Deployment with leader election in its own namespace and a grace period past the drain', () => {
    const spec = byKind(objects, 'Deployment').spec as { replicas: number; template: { spec: PodSpec } };
    expect(spec.replicas).toBe(2);
    const pod = spec.template.spec;
    const [container] = pod.containers;
    expect(container!.args).toEqual(deploymentArgs(DEFAULT_MANIFEST_OPTIONS));
    expect(container!.args).toContain('--leader-elect=true');
    expect(container!.args).toContain('--leader-elect-resource-namespace=ts-kcm-system');
    expect(container!.args).toContain('--shutdown-timeout=30s');
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(30);
    expect(container!.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container!.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'probes' });
    expect(container!.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'probes' });
  });

  it('follows the options: namespace, image, replicas, extra args', () => {
    const custom = renderManifests({
      definitions: [a],
      namespace: 'ops',
      image: 'r/ts:1',
      replicas: 3,
      extraArgs: ['-v=2'],
    });
    const deployment = byKind(custom, 'Deployment');
    const pod = (deployment.spec as { replicas: number; template: { spec: PodSpec } }).template.spec;
    expect((deployment.spec as { replicas: number }).replicas).toBe(3);
    expect(pod.containers[0]!.image).toBe('r/ts:1');
    expect(pod.containers[0]!.args).toContain('--leader-elect-resource-namespace=ops');
    expect(pod.containers[0]!.args.at(-1)).toBe('-v=2');
    expect(byKind(custom, 'Role').metadata.namespace).toBe('ops');
  });

  it('renders one YAML stream for `ts-kcm manifests`', () => {
    const yaml = renderManifestsYaml([a, b]);
    expect(yaml.split(/^---$/m)).toHaveLength(10);
    expect(yaml).toMatch(/^kind: PodDisruptionBudget$/m);
  });
});

describe('renderManifestFiles', () => {
  it('lists the CRDs found in the root kustomization and bundles them for the kind overlay', () => {
    const crd = 'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n';
    const files = renderManifestFiles(
      { definitions: [a] },
      { 'z.yaml': crd, 'a.yaml': crd, 'README.md': 'x' },
    );
    expect(files['kustomization.yaml']).toMatch(
      /resources:\n {2}- crds\/a.yaml\n {2}- crds\/z.yaml\n {2}- base\n/,
    );
    expect(files['overlays/kind/crds.yaml']).toContain('# manifests/crds/z.yaml\n' + crd);
    expect(files['overlays/kind/kustomization.yaml']).toContain('- crds.yaml');
    expect(renderManifestFiles({ definitions: [a] })['overlays/kind/crds.yaml']).toBeUndefined();
  });
});

describe('mergeRules', () => {
  it('merges verbs per (group, resource) and keeps nothing twice', () => {
    expect(
      mergeRules([
        { apiGroups: [''], resources: ['pods', 'events'], verbs: ['get', 'list'] },
        { apiGroups: [''], resources: ['pods'], verbs: ['watch', 'get'] },
      ]),
    ).toEqual([
      { apiGroups: [''], resources: ['events'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    ]);
  });
});

interface PodSpec {
  terminationGracePeriodSeconds: number;
  securityContext: Record<string, unknown>;
  containers: {
    image: string;
    args: string[];
    securityContext: Record<string, unknown>;
    livenessProbe: { httpGet: unknown };
    readinessProbe: { httpGet: unknown };
  }[];
}

describe('renderManifests with useServiceAccountCredentials', () => {
  const objects = renderManifests({ definitions: [a, b], useServiceAccountCredentials: true });
  const named = (kind: string, name: string) =>
    objects.find((o) => o.kind === kind && o.metadata.name === name);

  it('gives each controller its own ServiceAccount and ClusterRole with exactly its rules', () => {
    for (const def of [a, b]) {
      expect(named('ServiceAccount', def.name)?.metadata.namespace).toBe('ts-kcm-system');
      expect(named('ClusterRole', `ts-kcm:${def.name}`)?.rules).toEqual(mergeRules(def.rbac));
      expect(named('ClusterRoleBinding', `ts-kcm:${def.name}`)?.subjects).toEqual([
        { kind: 'ServiceAccount', name: def.name, namespace: 'ts-kcm-system' },
      ]);
    }
  });

  it("leaves the manager's own ClusterRole with reads only, and lets it mint exactly those tokens", () => {
    const rules = named('ClusterRole', 'ts-kcm')?.rules as PolicyRule[];
    for (const r of rules.filter(
      (r) =>
        !r.apiGroups.some(
          (g) =>
            g.endsWith('authentication.k8s.io') ||
            g.endsWith('authorization.k8s.io') ||
            g === 'events.k8s.io',
        ),
    )) {
      expect(r.verbs.every((v) => ['get', 'list', 'watch'].includes(v))).toBe(true);
    }
    expect(named('Role', 'ts-kcm-controller-tokens')?.rules).toEqual([
      {
        apiGroups: [''],
        resources: ['serviceaccounts/token'],
        resourceNames: [a.name, b.name].sort(),
        verbs: ['create'],
      },
    ]);
    const args = JSON.stringify(named('Deployment', 'ts-kcm'));
    expect(args).toContain('--use-service-account-credentials=true');
    expect(args).toContain('--service-account-credentials-namespace=ts-kcm-system');
  });
});
