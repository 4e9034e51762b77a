/**
 * `ts-kcm manifests`: the YAML to deploy exactly the enabled controllers (built-in and
 * `--plugin` ones), on stdout and nothing else there, so `ts-kcm manifests | kubectl apply -f -`
 * works. The command is thin on purpose: options in, `manifestsYaml(definitions, options)` out.
 *
 * Interim: lib/manifests (the deploy set: Namespace, Service, PDB and the hardened
 * Deployment) is being written beside this; once it is on main, `manifestsYaml` becomes a call
 * to its `renderManifestsYaml` with the same arguments. Until then this renders the core the
 * repository's manifests/ has today, with the Lease rights moved into a namespaced Role.
 */
import { dumpYaml } from '@kubernetes/client-node';
import { Command, Option } from 'commander';
import type { ControllerDefinition, PolicyRule } from '../controller/types.js';
import { errorMessage } from '../log/index.js';
import { resolveControllers } from '../manager/index.js';
import { EXIT_USAGE, ExitError } from './exit.js';
import { pluginOption } from './plugins.js';

export interface ManifestsOptions {
  /** `--controllers`, as the flag takes it. */
  controllers: string[];
  /** Where the ServiceAccount, Lease and Deployment live. */
  namespace: string;
  image: string;
  /** Name of every object and of the Lease. */
  name: string;
}

export const DEFAULT_MANIFESTS_OPTIONS: ManifestsOptions = {
  controllers: ['*'],
  namespace: 'kube-system',
  image: 'ts-kcm:latest',
  name: 'ts-kcm',
};

/** Events the manager records for every controller; the Lease goes in a namespaced Role. */
const managerClusterRules: PolicyRule[] = [
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch', 'update'] },
];
const leaseRules: PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create', 'get', 'update'] },
];

/** One rule per apiGroup/resource, verbs merged, sorted: a stable, reviewable role. */
export function mergeRules(rules: PolicyRule[]): PolicyRule[] {
  const byTarget = new Map<string, PolicyRule>();
  for (const rule of rules) {
    for (const group of rule.apiGroups) {
      for (const resource of rule.resources) {
        const key = `${group}\u0000${resource}`;
        const merged = byTarget.get(key) ?? { apiGroups: [group], resources: [resource], verbs: [] };
        merged.verbs = [...new Set([...merged.verbs, ...rule.verbs])].sort();
        byTarget.set(key, merged);
      }
    }
  }
  return [...byTarget.values()].sort(
    (a, b) =>
      a.apiGroups[0]!.localeCompare(b.apiGroups[0]!) || a.resources[0]!.localeCompare(b.resources[0]!),
  );
}

/** The objects for the enabled controllers, in the order `kubectl apply -f -` needs them. */
export function manifestObjects(
  definitions: ControllerDefinition[],
  options: Partial<ManifestsOptions> = {},
): object[] {
  const o = { ...DEFAULT_MANIFESTS_OPTIONS, ...options };
  const enabled = resolveControllers(definitions, o.controllers);
  const rbacApi = 'rbac.authorization.k8s.io/v1';
  const subjects = [{ kind: 'ServiceAccount', name: o.name, namespace: o.namespace }];
  const meta = { name: o.name, namespace: o.namespace };
  const labels = { 'app.kubernetes.io/name': o.name };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta },
    {
      apiVersion: rbacApi,
      kind: 'ClusterRole',
      metadata: { name: o.name },
      rules: mergeRules([...managerClusterRules, ...enabled.flatMap((d) => d.rbac)]),
    },
    {
      apiVersion: rbacApi,
      kind: 'ClusterRoleBinding',
      metadata: { name: o.name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: o.name },
      subjects,
    },
    { apiVersion: rbacApi, kind: 'Role', metadata: meta, rules: leaseRules },
    {
      apiVersion: rbacApi,
      kind: 'RoleBinding',
      metadata: meta,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: o.name },
      subjects,
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { ...meta, labels },
      spec: {
        replicas: 2, // leader election keeps one active; the other takes over within ~17 s
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: o.name,
            securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: o.name,
                image: o.image,
                args: [
                  'run',
                  `--controllers=${enabled.map((d) => d.name).join(',')}`,
                  '--leader-elect=true',
                  `--leader-elect-resource-name=${o.name}`,
                  `--leader-elect-resource-namespace=${o.namespace}`,
                ],
                ports: [
                  { name: 'metrics', containerPort: 8080 },
                  { name: 'probes', containerPort: 8081 },
                ],
                livenessProbe: { httpGet: { path: '/healthz', port: 'probes' }, periodSeconds: 10 },
                readinessProbe: { httpGet: { path: '/readyz', port: 'probes' }, periodSeconds: 5 },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                },
              },
            ],
          },
        },
      },
    },
  ];
}

/** The multi-document YAML `ts-kcm manifests` prints. */
export function manifestsYaml(
  definitions: ControllerDefinition[],
  options: Partial<ManifestsOptions> = {},
): string {
  return manifestObjects(definitions, options)
    .map((d) => dumpYaml(d))
    .join('---\n');
}

interface ManifestsFlags {
  controllers: string;
  namespace: string;
  image: string;
  plugin?: string[];
}

export function manifestsCommand(
  definitions: ControllerDefinition[],
  out: (text: string) => void = (text) => process.stdout.write(text),
): Command {
  const d = DEFAULT_MANIFESTS_OPTIONS;
  return new Command('manifests')
    .description('print the ServiceAccount, RBAC and Deployment for the enabled controllers as YAML')
    .addOption(pluginOption())
    .option('--controllers <list>', "controllers to enable, as `run` takes them ('*', 'foo', '-foo')", '*')
    .option('--namespace <ns>', 'namespace of the ServiceAccount, Lease and Deployment', d.namespace)
    .addOption(new Option('--image <image>', 'container image of the Deployment').default(d.image))
    .allowExcessArguments(false)
    .action((flags: ManifestsFlags) => {
      let yaml: string;
      try {
        yaml = manifestsYaml(definitions, {
          controllers: flags.controllers.split(','),
          namespace: flags.namespace,
          image: flags.image,
        });
      } catch (err) {
        throw new ExitError(EXIT_USAGE, `error: --controllers: ${errorMessage(err)}`);
      }
      out(yaml);
    });
}
