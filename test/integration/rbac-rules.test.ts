/**
 * Least privilege, rule by rule: every verb of every rule of the generated ClusterRole and
 * leader-election Role is dropped in turn, ts-kcm runs in-cluster style (TokenRequest token,
 * CA file, KUBERNETES_SERVICE_HOST/PORT) as a ServiceAccount holding the rest of the
 * manifests' RBAC, a scenario that needs the right runs, and the test asserts that ts-kcm logs
 * the apiserver's Forbidden (`cannot <verb> resource "<resource>"`) or the scenario fails.
 *
 * The cases come from the rendered rules, so a new rule or verb is covered (or fails here)
 * without touching this file; what is written down per controller is only its scenario. A
 * baseline run with every rule shows each scenario passes when nothing is dropped.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinControllers } from '../../controllers/index.js';
import { startControlPlane, type TestControlPlane } from '../../lib/testing.js';
import type { PolicyRule } from '../../lib/controller/index.js';
import {
  deploymentArgs,
  manifestOptions,
  renderManifests,
  type KubeManifest,
} from '../../lib/manifests/index.js';
import {
  createTestNamespace,
  deleteNamespace,
  kubectl,
  startTsKcm,
  testKubeConfig,
  uniqueName,
  waitFor,
  type TsKcmProcess,
} from '../support/cluster.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CRD_FILE = join(repoRoot, 'manifests', 'crds', 'lb.ts-kcm.io_loadbalancerippools.yaml');
const TEST_LABEL = 'ts-kcm.test/rbac-rules';
/** How long a case waits for the Forbidden line or the scenario's failure. */
const CASE_TIMEOUT_MS = 40_000;
/** ts-kcm processes at once: each is short, the machine is small. */
const PARALLEL = 5;

type Rule = PolicyRule & { resourceNames?: string[] };

interface Case {
  role: 'ClusterRole' | 'Role';
  index: number;
  verb: string;
  group: string;
  resource: string;
  resourceNames?: string[];
}

const label = (c: Case) =>
  `${c.role} ${c.group || 'core'}/${c.resource}${c.resourceNames ? `[${c.resourceNames.join(',')}]` : ''} ${c.verb}`;

/** The rendered rules of the default deployment (every built-in controller enabled). */
function renderedRules(): { cluster: Rule[]; lease: Rule[] } {
  const objs = renderManifests({ definitions: builtinControllers });
  const o = manifestOptions();
  const cluster = objs.find((x) => x.kind === 'ClusterRole' && x.metadata.name === o.name)!;
  const lease = objs.find((x) => x.kind === 'Role')!;
  return { cluster: cluster.rules as Rule[], lease: lease.rules as Rule[] };
}

function casesOf(): Case[] {
  const { cluster, lease } = renderedRules();
  const out: Case[] = [];
  for (const [role, rules] of [
    ['ClusterRole', cluster],
    ['Role', lease],
  ] as const) {
    rules.forEach((r, index) => {
      // mergeRules gives one apiGroup/resource per rule; the lease rules are written so too.
      expect({ groups: r.apiGroups.length, resources: r.resources.length }).toEqual({
        groups: 1,
        resources: 1,
      });
      for (const verb of r.verbs)
        out.push({
          role,
          index,
          verb,
          group: r.apiGroups[0]!,
          resource: r.resources[0]!,
          ...(r.resourceNames ? { resourceNames: r.resourceNames } : {}),
        });
    });
  }
  return out;
}

function without(rules: Rule[], index: number, verb: string): Rule[] {
  return rules
    .map((r, i) => (i === index ? { ...r, verbs: r.verbs.filter((v) => v !== verb) } : r))
    .filter((r) => r.verbs.length > 0);
}

// ---------------------------------------------------------------- scenarios

interface Run {
  proc: TsKcmProcess;
  /** The case's own names: namespace for namespaced objects, a suffix for cluster-scoped ones. */
  ns: string;
  id: number;
  token: string;
  signal: AbortSignal;
  /** The baseline: wait for each step's result and throw if it does not come. */
  verify: boolean;
}

/** Drives the scenario; resolves to a description of an observed failure, or undefined. */
type Scenario = (run: Run) => Promise<string | undefined>;

const apply = async (objs: object[]) => {
  const r = await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs }),
  });
  if (r.code !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
};
const kc = async (args: string[]) => {
  const r = await kubectl(args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The object as JSON, or undefined once it is gone. */
const getJson = async (args: string[]): Promise<Json | undefined> => {
  const r = await kubectl(['get', ...args, '-o', 'json']);
  if (r.code !== 0 && /NotFound/.test(r.stderr)) return undefined;
  if (r.code !== 0) throw new Error(`kubectl get ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Json;
};
/**
 * Waits (bounded) until `ok` holds for the object. The baseline fails if it does not; with a
 * right dropped the step may never come, so after a while the scenario moves on (the case
 * ends on the Forbidden line, whichever step provoked it).
 */
const step = async (run: Run, what: string, args: string[], ok: (o: Json | undefined) => boolean) => {
  const wait = waitFor(
    async () => {
      if (run.signal.aborted) return true;
      return ok(await getJson(args));
    },
    { timeoutMs: run.verify ? 30_000 : 8_000, intervalMs: 250, description: what },
  );
  await (run.verify ? wait : wait.catch(() => undefined));
};
const ready = (o: Json | undefined) =>
  (o?.status?.conditions ?? []).some((c: Json) => c.type === 'Ready' && c.status === 'True');

/** ServiceCIDR: the finalizer and the Ready condition, then deletion (finalizer removal). */
const serviceCIDRScenario: Scenario = async (run) => {
  const { id } = run;
  const name = uniqueName(`rbac-cidr-${id}`);
  await apply([
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name, labels: { [TEST_LABEL]: 'true' } },
      spec: { cidrs: [`172.29.${id % 250}.0/24`] },
    },
  ]);
  await step(run, 'the ServiceCIDR finalized and Ready', ['servicecidr', name], (o) =>
    Boolean(o?.metadata.finalizers?.includes('networking.k8s.io/service-cidr-finalizer') && ready(o)),
  );
  await kubectl(['delete', 'servicecidr', name, '--wait=false']);
  await step(run, 'the ServiceCIDR gone', ['servicecidr', name], (o) => o === undefined);
  return undefined;
};

/**
 * ResourceClaim: a pod with a template claim (create claim, apply pod status), that pod done
 * (delete the generated claim), an allocated claim reserved for a pod gone unseen (GET pod,
 * PUT status, PUT claim to drop the finalizer), one for a pod with nodeName (patch status), and
 * a pod naming a missing template (the same Warning event on every retry: create, then patch).
 */
const resourceClaimScenario: Scenario = async (run) => {
  const { ns, id } = run;
  const driver = 'rbac.example.com';
  const allocation = { devices: { results: [{ request: 'r', driver, pool: 'p', device: 'd' }] } };
  const claim = (name: string) => ({
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaim',
    metadata: { name, namespace: ns, finalizers: ['resource.kubernetes.io/delete-protection'] },
    spec: { devices: { requests: [{ name: 'r', exactly: { deviceClassName: `rbac-class-${id}` } }] } },
  });
  const pod = (name: string, claimRef: Record<string, string>, nodeName?: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: {
      ...(nodeName ? { nodeName } : { nodeSelector: { 'ts-kcm.test/no-such-node': 'true' } }),
      terminationGracePeriodSeconds: 0,
      containers: [
        { name: 'c', image: 'registry.k8s.io/pause:3.10', resources: { claims: [{ name: 'r' }] } },
      ],
      resourceClaims: [{ name: 'r', ...claimRef }],
    },
  });
  await apply([
    {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'DeviceClass',
      metadata: { name: `rbac-class-${id}`, labels: { [TEST_LABEL]: 'true' } },
      spec: { selectors: [{ cel: { expression: `device.driver == "${driver}"` } }] },
    },
    {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceClaimTemplate',
      metadata: { name: 'tpl', namespace: ns },
      spec: { spec: claim('x').spec },
    },
    claim('ghost-claim'),
    claim('node-claim'),
  ]);
  const ghostUID = `${randomBytes(4).toString('hex')}-0000-4000-8000-000000000000`;
  await kc([
    ...['patch', 'resourceclaim', 'ghost-claim', '-n', ns, '--subresource=status', '--type=merge', '-p'],
    JSON.stringify({
      status: { allocation, reservedFor: [{ resource: 'pods', name: 'ghost', uid: ghostUID }] },
    }),
  ]);
  await kc([
    ...['patch', 'resourceclaim', 'node-claim', '-n', ns, '--subresource=status', '--type=merge', '-p'],
    JSON.stringify({ status: { allocation } }),
  ]);
  await apply([
    pod('templated', { resourceClaimTemplateName: 'tpl' }),
    pod('on-node', { resourceClaimName: 'node-claim' }, 'nowhere'),
    // No such template: a Warning event per retry, so the repeats are patches of one Event.
    pod('no-template', { resourceClaimTemplateName: 'missing' }),
  ]);
  let generated = '';
  await step(run, 'the templated pod’s claim in its status', ['pod', 'templated', '-n', ns], (o) => {
    generated = o?.status?.resourceClaimStatuses?.[0]?.resourceClaimName ?? '';
    return generated !== '';
  });
  await step(
    run,
    'the ghost reservation dropped with the finalizer',
    ['resourceclaim', 'ghost-claim', '-n', ns],
    (o) => Boolean(o && !o.status?.reservedFor?.length && !o.metadata.finalizers?.length),
  );
  await step(
    run,
    'node-claim reserved for the pod on a node',
    ['resourceclaim', 'node-claim', '-n', ns],
    (o) => (o?.status?.reservedFor ?? []).some((r: Json) => r.name === 'on-node'),
  );
  await step(
    run,
    'a repeated FailedResourceClaimCreation event',
    ['events', '-n', ns, '--field-selector=involvedObject.name=no-template'],
    (o) => (o?.items ?? []).some((e: Json) => e.reason === 'FailedResourceClaimCreation' && e.count > 1),
  );
  // The templated pod is done: its generated claim goes.
  await kubectl([
    ...['patch', 'pod', 'templated', '-n', ns, '--subresource=status', '--type=merge', '-p'],
    JSON.stringify({ status: { phase: 'Succeeded' } }),
  ]);
  if (run.verify)
    await step(
      run,
      'the done pod’s generated claim deleted',
      ['resourceclaim', generated, '-n', ns],
      (o) => o === undefined,
    );
  return undefined;
};

/** LoadBalancer Service + pool: allocation (IPAddress, Service status, pool status), then release. */
const lbIPAMScenario: Scenario = async (run) => {
  const { ns, id } = run;
  const pool = uniqueName(`rbac-pool-${id}`);
  await apply([
    {
      apiVersion: 'lb.ts-kcm.io/v1alpha1',
      kind: 'LoadBalancerIPPool',
      metadata: { name: pool, labels: { [TEST_LABEL]: 'true' } },
      spec: { addresses: [`10.234.${id % 250}.0/28`] },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'lb', namespace: ns, annotations: { 'lb.ts-kcm.io/address-pool': pool } },
      spec: {
        type: 'LoadBalancer',
        loadBalancerClass: 'lb.ts-kcm.io/ipam',
        allocateLoadBalancerNodePorts: false,
        ports: [{ port: 80 }],
      },
    },
  ]);
  await step(run, 'the Service given an address', ['service', 'lb', '-n', ns], (o) =>
    Boolean(o?.status?.loadBalancer?.ingress?.[0]?.ip),
  );
  await kubectl(['delete', 'service', 'lb', '-n', ns, '--wait=false']);
  await step(run, 'the Service released and gone', ['service', 'lb', '-n', ns], (o) => o === undefined);
  return undefined;
};

/** Secure /metrics scraped with a token allowed to read it: TokenReview + SubjectAccessReview. */
const metricsScenario: Scenario = async ({ proc, token, verify }) => {
  const [, address] = await proc.waitForOutput(
    /"address":"([^"]+)"[^\n]*"message":"serving metrics"/,
    30_000,
  );
  const port = Number(address!.slice(address!.lastIndexOf(':') + 1));
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/metrics',
        rejectUnauthorized: false, // the self-signed serving certificate; trust is not under test here
        headers: { Authorization: `Bearer ${token}` },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
  // A refused review must show in ts-kcm's log (the case waits for it); the 500 alone says little.
  if (!verify) return undefined;
  return status === 200 ? undefined : `an authorized scrape of /metrics answered ${status}`;
};

/** Leader election needs nothing but the run itself (get, create, then update to renew). */
const leaseScenario: Scenario = async () => undefined;

const controllerScenarios: Record<string, Scenario> = {
  'service-cidr-controller': serviceCIDRScenario,
  'resourceclaim-controller': resourceClaimScenario,
  'service-lb-ipam-controller': lbIPAMScenario,
};

/** What a case runs: the controllers that declare the right, or the manager's own scenario. */
function planOf(c: Case): { controllers: string[]; scenario: Scenario } {
  const declaring = builtinControllers.filter((d) =>
    d.rbac.some(
      (r) => r.apiGroups.includes(c.group) && r.resources.includes(c.resource) && r.verbs.includes(c.verb),
    ),
  );
  if (c.role === 'Role') return { controllers: ['service-cidr-controller'], scenario: leaseScenario };
  if (declaring.length === 0) return { controllers: ['service-cidr-controller'], scenario: metricsScenario };
  // Events: every controller records them; one whose scenario repeats an event is enough.
  const chosen =
    c.resource === 'events' ? declaring.filter((d) => d.name === 'resourceclaim-controller') : declaring;
  const names = (chosen.length ? chosen : declaring).map((d) => d.name);
  for (const n of names)
    if (!controllerScenarios[n]) throw new Error(`no scenario for controller ${n} (${label(c)})`);
  return {
    controllers: names,
    scenario: async (run) => {
      const results = await Promise.all(names.map((n) => controllerScenarios[n]!(run)));
      return results.find((r) => r !== undefined);
    },
  };
}

// ---------------------------------------------------------------- runs

let ca: string;
let server: URL;
const dirs: string[] = [];
const namespaces: string[] = [];
let nextId = 0;

interface Outcome {
  how?: string;
  output: string;
}

/** Applies `cluster`/`lease` rules for a fresh ServiceAccount, runs ts-kcm as it and the scenario. */
async function runCase(
  controllers: string[],
  scenario: Scenario,
  cluster: Rule[],
  lease: Rule[],
  forbidden: RegExp | undefined,
  observeMs: number,
  extraEnv: NodeJS.ProcessEnv = {},
  verify = false,
): Promise<Outcome> {
  const id = nextId++;
  const ns = await createTestNamespace(`rbac-${id}`);
  namespaces.push(ns);
  const o = manifestOptions({
    name: `ts-kcm-rbac-${id}-${randomBytes(2).toString('hex')}`,
    namespace: ns,
    controllers,
  });
  o.leaseName = o.name;
  const labels = { [TEST_LABEL]: 'true' };
  const rendered = renderManifests({ definitions: builtinControllers, ...o });
  const objs: KubeManifest[] = rendered
    .filter(
      (x) =>
        ['ServiceAccount', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(x.kind) ||
        (x.kind === 'ClusterRole' && x.metadata.name === o.name),
    )
    .map((x) => {
      const copy = structuredClone(x);
      copy.metadata.labels = { ...(copy.metadata.labels as object), ...labels };
      if (x.kind === 'ClusterRole') copy.rules = cluster;
      if (x.kind === 'Role')
        copy.rules = lease.map((r) => (r.resourceNames ? { ...r, resourceNames: [o.leaseName] } : r));
      return copy;
    });
  // The scraper's right to read /metrics, for the metrics scenario's token (the SA's own).
  objs.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `${o.name}-metrics-reader`, labels },
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'ts-kcm-rbac-metrics-reader',
    },
    subjects: [{ kind: 'ServiceAccount', name: o.name, namespace: ns }],
  });
  await apply(objs);
  const token = (await kc(['-n', ns, 'create', 'token', o.name, '--duration=1h'])).trim();
  const saDir = mkdtempSync(join(tmpdir(), 'ts-kcm-rbac-'));
  dirs.push(saDir);
  writeFileSync(join(saDir, 'token'), token, { mode: 0o600 });
  writeFileSync(join(saDir, 'ca.crt'), ca);
  const args = deploymentArgs(o).map((a) =>
    /^--(metrics|health-probe)-bind-address=/.test(a) ? `${a.split('=')[0]}=127.0.0.1:0` : a,
  );
  const proc = startTsKcm([...args, '--lb-ipam-release-hold=1s'], {
    kubeconfig: false,
    env: {
      ...process.env,
      KUBECONFIG: '',
      HOME: saDir,
      KUBERNETES_SERVICE_HOST: server.hostname,
      KUBERNETES_SERVICE_PORT: server.port,
      TS_KCM_SERVICE_ACCOUNT_DIR: saDir,
      ...extraEnv,
    },
  });
  const abort = new AbortController();
  try {
    const seen = forbidden
      ? proc.waitForOutput(forbidden, observeMs).then(
          (m) => `logged: ${m[0]}`,
          () => undefined,
        )
      : new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), observeMs));
    const failed = scenario({ proc, ns, id, token, signal: abort.signal, verify }).catch(
      (err: Error) => `scenario failed: ${err.message.split('\n')[0]}`,
    );
    // The first of: the Forbidden line, or the scenario's failure (which needs no waiting).
    const how = await Promise.race([seen, failed.then((f) => f ?? seen)]);
    return { how, output: proc.output() };
  } finally {
    abort.abort();
    await proc.stop('SIGKILL');
  }
}

async function inPool<T, R>(items: T[], n: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let privateCP: TestControlPlane | undefined;
let sharedKubeconfig: string | undefined;

describe('least privilege, rule by rule', () => {
  const { cluster, lease } = renderedRules();

  beforeAll(async () => {
    // A control plane of its own: the cases leave pods without their templates, ServiceCIDRs
    // and pools that ts-kcm was not allowed to finish, and namespaces stay Terminating with
    // their contents (no namespace controller) — none of that may reach the other tests.
    // Every helper here (kubectl, createTestNamespace, startTsKcm) follows the variable.
    privateCP = await startControlPlane({ scheduler: true });
    sharedKubeconfig = process.env.TS_KCM_TEST_KUBECONFIG;
    process.env.TS_KCM_TEST_KUBECONFIG = privateCP.kubeconfigPath;
    const c = testKubeConfig().getCurrentCluster()!;
    ca = c.caData ? Buffer.from(c.caData, 'base64').toString() : readFileSync(c.caFile!, 'utf8');
    server = new URL(c.server);
    await kc(['apply', '-f', CRD_FILE]);
    await kc([
      'wait',
      '--for=condition=Established',
      '--timeout=30s',
      'crd/loadbalancerippools.lb.ts-kcm.io',
    ]);
    await apply([
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'ts-kcm-rbac-metrics-reader', labels: { [TEST_LABEL]: 'true' } },
        rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }],
      },
    ]);
  }, 60_000);

  afterAll(async () => {
    await kubectl([
      'delete',
      'clusterrole,clusterrolebinding,servicecidr,loadbalancerippool,deviceclass',
      '-l',
      `${TEST_LABEL}=true`,
      '--wait=false',
    ]);
    await Promise.all(namespaces.map((ns) => deleteNamespace(ns)));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    process.env.TS_KCM_TEST_KUBECONFIG = sharedKubeconfig;
    await privateCP?.stop();
  }, 90_000);

  it('has no wildcard verbs, resources or apiGroups', () => {
    for (const r of [...cluster, ...lease])
      for (const v of [...r.apiGroups, ...r.resources, ...r.verbs])
        expect({ rule: r, v }).not.toEqual({ rule: r, v: '*' });
    expect(JSON.stringify([cluster, lease])).not.toContain('*');
  });

  it('with every rule, every scenario passes and nothing is forbidden', async () => {
    const all = Object.keys(controllerScenarios);
    const { how, output } = await runCase(
      all,
      async (run) => {
        const r = await Promise.all(
          [...Object.values(controllerScenarios), metricsScenario].map((s) => s(run)),
        );
        return r.find((x) => x !== undefined) ?? 'passed';
      },
      cluster,
      lease,
      /forbidden/i,
      CASE_TIMEOUT_MS,
      {},
      true,
    );
    expect({ how, forbidden: output.match(/.*forbidden.*/i)?.[0] }).toEqual({
      how: 'passed',
      forbidden: undefined,
    });
  }, 120_000);

  it('dropping any one verb of any rule makes ts-kcm report Forbidden for it, or the scenario fail', async () => {
    const cases = casesOf();
    const results = await inPool(cases, PARALLEL, async (c) => {
      const { controllers, scenario } = planOf(c);
      const forbidden = new RegExp(`cannot ${escape(c.verb)} resource \\\\?"${escape(c.resource)}\\\\?"`);
      const { how, output } = await runCase(
        controllers,
        scenario,
        c.role === 'ClusterRole' ? without(cluster, c.index, c.verb) : cluster,
        c.role === 'Role' ? without(lease, c.index, c.verb) : lease,
        forbidden,
        CASE_TIMEOUT_MS,
        // The informers' initial state comes from a WatchList stream (a watch); LIST is what they
        // fall back to on an apiserver without it, the way client-go's switch forces it here.
        c.verb === 'list' ? { KUBE_FEATURE_WatchListClient: 'false' } : {},
      );
      return { rule: label(c), controllers: controllers.join(','), how, output };
    });
    const table = results
      .map((r) => `${r.rule} (${r.controllers}) -> ${r.how ?? 'NOTHING OBSERVED'}`)
      .join('\n');
    console.log(`rule -> how it failed\n${table}`);
    expect(results.filter((r) => !r.how).map((r) => r.rule)).toEqual([]);
  }, 600_000);
});
