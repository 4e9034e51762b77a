/**
 * `ts-kcm new controller`: the files of a ready project, as path → content, so the templates
 * are unit-tested without touching the disk. The project runs TypeScript directly on Node 24
 * (type stripping: no build step, imports name `.ts` files) and tests with node:test.
 *
 * Written against the ts-kcm public API (defineController, resourceRef, ts-kcm/testing's
 * FakeKubeClient and startControlPlane).
 */
export interface ScaffoldOptions {
  /** The controller's name (DNS-1123 label), also the package name. */
  name: string;
  /** ts-kcm's dependency specifier, e.g. `^0.1.0` or `file:/tmp/ts-kcm-0.1.0.tgz`. */
  tsKcmVersion: string;
  /** A custom resource: group, version and kind of a namespaced CRD. */
  crd?: { group: string; version: string; kind: string };
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const KIND = /^[A-Z][A-Za-z0-9]*$/;
const VERSION = /^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$/;

/** Why the options cannot make a project, or undefined when they can. */
export function validateScaffold(o: {
  name: string;
  group?: string;
  version?: string;
  kind?: string;
}): string | undefined {
  if (o.name.length > 63 || !DNS1123_LABEL.test(o.name))
    return `invalid controller name "${o.name}": must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)`;
  const given = [o.group, o.version, o.kind].filter((x) => x !== undefined).length;
  if (given === 0) return undefined;
  if (o.kind === undefined) return '--group and --version need --kind';
  if (!KIND.test(o.kind))
    return `invalid kind "${o.kind}": must be UpperCamelCase letters and digits, e.g. Widget`;
  const group = o.group ?? 'example.com';
  if (group.length > 253 || !DNS1123_SUBDOMAIN.test(group) || !group.includes('.'))
    return `invalid group "${group}": must be a DNS subdomain with a dot, e.g. example.com`;
  if (!VERSION.test(o.version ?? 'v1alpha1'))
    return `invalid version "${o.version}": must look like v1, v1beta1 or v1alpha1`;
  return undefined;
}

const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';

export function scaffoldFiles(o: ScaffoldOptions): Record<string, string> {
  const crd = o.crd;
  const files: Record<string, string> = {
    'package.json': json({
      name: o.name,
      version: '0.1.0',
      private: true,
      type: 'module',
      engines: { node: '>=24' },
      scripts: {
        start: `ts-kcm run --plugin ./src/controller.ts --controllers=${o.name}`,
        test: 'node --test',
        typecheck: 'tsc --noEmit',
        ...(crd ? { 'gen:types': `ts-kcm gen types crds/*.yaml --out src/generated` } : {}),
      },
      dependencies: { 'ts-kcm': o.tsKcmVersion },
      devDependencies: { node: '^24', typescript: '~6.0.3', '@types/node': '^24' },
      allowScripts: { node: true },
    }),
    'tsconfig.json': json({
      compilerOptions: {
        target: 'ES2023',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        types: ['node'],
        strict: true,
        noEmit: true,
        allowImportingTsExtensions: true,
        verbatimModuleSyntax: true,
        erasableSyntaxOnly: true,
        skipLibCheck: true,
      },
      include: ['src/**/*.ts'],
    }),
    '.gitignore': 'node_modules/\n.ts-kcm/\n',
  };
  if (crd) {
    const plural = crd.kind.toLowerCase() + 's';
    files[`crds/${plural}.${crd.group}.yaml`] = crdYaml(crd, plural);
    files[`samples/${crd.kind.toLowerCase()}.yaml`] =
      `apiVersion: ${crd.group}/${crd.version}\nkind: ${crd.kind}\nmetadata:\n  name: ${crd.kind.toLowerCase()}-sample\nspec:\n  message: hello\n`;
  }
  files['src/controller.ts'] = crd ? crdController(o.name, crd) : podController(o.name);
  files['src/controller.test.ts'] = unitTest(o.name, crd);
  files['src/controller.integration.test.ts'] = integrationTest(o.name, crd);
  files['README.md'] = readme(o.name, crd);
  return files;
}

function crdYaml(crd: { group: string; version: string; kind: string }, plural: string): string {
  return `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${plural}.${crd.group}
spec:
  group: ${crd.group}
  names:
    kind: ${crd.kind}
    listKind: ${crd.kind}List
    plural: ${plural}
    singular: ${crd.kind.toLowerCase()}
  scope: Namespaced
  versions:
    - name: ${crd.version}
      served: true
      storage: true
      subresources:
        status: {}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                message:
                  type: string
            status:
              type: object
              properties:
                observedGeneration:
                  type: integer
                conditions:
                  type: array
                  x-kubernetes-list-type: map
                  x-kubernetes-list-map-keys: [type]
                  items:
                    type: object
                    required: [type, status]
                    properties:
                      type: { type: string }
                      status: { type: string }
                      reason: { type: string }
                      message: { type: string }
                      observedGeneration: { type: integer }
                      lastTransitionTime: { type: string, format: date-time }
`;
}

const refName = (crd: { version: string; kind: string }): string =>
  crd.kind[0]!.toLowerCase() +
  crd.kind.slice(1) +
  crd.version[0]!.toUpperCase() +
  crd.version.slice(1).replace(/([0-9])([a-z])/g, (_, d: string, c: string) => d + c.toUpperCase());

function crdController(name: string, crd: { group: string; version: string; kind: string }): string {
  const ref = refName(crd);
  return `/**
 * ${name}: sets a Ready condition on every ${crd.kind}.
 */
import { defineController } from 'ts-kcm';
import { ${ref}, type ${crd.kind} } from './generated/${crd.kind.toLowerCase()}.ts';

export default defineController<${crd.kind}>({
  name: '${name}',
  for: ${ref},
  // RBAC: reads of ${crd.kind} come from \`for\`; the status write is declared here.
  writes: [{ resource: ${ref}, subresource: 'status', verbs: ['patch'] }],
  async reconcile({ object }, ctx) {
    if (!object) return; // deleted
    await ctx.setCondition(object, {
      type: 'Ready',
      status: 'True',
      reason: 'Reconciled',
      message: \`seen spec.message \${JSON.stringify(object.spec?.message ?? '')}\`,
    });
  },
});
`;
}

function podController(name: string): string {
  return `/**
 * ${name}: logs every Pod it sees. Replace the body of reconcile with your logic.
 */
import { defineController, Resources } from 'ts-kcm';

export default defineController({
  name: '${name}',
  for: Resources.pods,
  async reconcile({ key, object }, ctx) {
    ctx.logger.info(object ? 'pod seen' : 'pod gone', { key });
  },
});
`;
}

function unitTest(name: string, crd?: { group: string; version: string; kind: string }): string {
  if (!crd) {
    return `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeKubeClient, reconcileOnce } from 'ts-kcm/testing';
import controller from './controller.ts';

test('${name} makes no API calls for a pod', async () => {
  const client = new FakeKubeClient();
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' } };
  await reconcileOnce(controller, { client, objects: [pod], key: 'default/p' });
  assert.deepEqual(client.actions, []);
});
`;
  }
  const lower = crd.kind.toLowerCase();
  return `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeKubeClient, reconcileOnce } from 'ts-kcm/testing';
import controller from './controller.ts';

test('${name} sets Ready on a ${crd.kind} by one status apply', async () => {
  const client = new FakeKubeClient();
  const ${lower} = {
    apiVersion: '${crd.group}/${crd.version}',
    kind: '${crd.kind}',
    metadata: { name: 'a', namespace: 'default', generation: 1 },
    spec: { message: 'hi' },
  };
  await reconcileOnce(controller, { client, objects: [${lower}], key: 'default/a' });
  const writes = client.writeActions();
  assert.equal(writes.length, 1);
  assert.equal(writes[0]!.subresource, 'status');
});
`;
}

function integrationTest(name: string, crd?: { group: string; version: string; kind: string }): string {
  const crdsArg = crd ? `crds: [fileURLToPath(new URL('../crds/', import.meta.url))]` : '';
  return `/** Against a real etcd + kube-apiserver (built once into ~/.cache/ts-kcm on first use). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { runManager } from 'ts-kcm';
import { startControlPlane, waitFor } from 'ts-kcm/testing';
import controller from './controller.ts';

let cp: Awaited<ReturnType<typeof startControlPlane>>;
before(async () => {
  cp = await startControlPlane({ ${crdsArg} });
}, { timeout: 30 * 60_000 });
after(async () => {
  await cp?.stop();
});

test('${name} runs against a real apiserver', { timeout: 120_000 }, async () => {
  const stop = new AbortController();
  const running = runManager({
    controllers: [controller],
    argv: ['--kubeconfig', cp.kubeconfigPath, '--leader-elect=false', '--metrics-bind-address=0', '--health-probe-bind-address=0'],
    signal: stop.signal,
  });
  try {
${
  crd
    ? `    const ref = { group: '${crd.group}', version: '${crd.version}', resource: '${crd.kind.toLowerCase()}s', kind: '${crd.kind}', namespaced: true };
    await cp.client.resource(ref).create({
      apiVersion: '${crd.group}/${crd.version}',
      kind: '${crd.kind}',
      metadata: { name: 'it', namespace: 'default' },
      spec: { message: 'hello' },
    });
    await waitFor(async () => {
      const got = (await cp.client.resource(ref).get('it', 'default')) as { status?: { conditions?: { type: string; status: string }[] } };
      return got.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    });`
    : `    await new Promise((resolve) => setTimeout(resolve, 2000));`
}
  } finally {
    stop.abort();
    assert.equal(await running, 0);
  }
});
`;
}

function readme(name: string, crd?: { group: string; version: string; kind: string }): string {
  return `# ${name}

A controller for [ts-kcm](https://github.com/ts-kcm/ts-kcm), written with \`defineController\`.

\`\`\`sh
npm install
npm test          # unit test (recorded API calls) + integration test (real kube-apiserver)
npm start         # runs the controller; with no kubeconfig, against a local control plane
npm start -- --kubeconfig ~/.kube/config -v 4   # flags after -- go to ts-kcm run
npx ts-kcm manifests --plugin ./src/controller.ts --controllers=${name}   # RBAC + Deployment YAML
\`\`\`

The first \`npm test\` or \`npm start\` without a cluster builds etcd and kube-apiserver from Go
modules (Go >= 1.25 needed) into \`~/.cache/ts-kcm\`: several minutes, once per machine.
${
  crd
    ? `
The custom resource: \`crds/\` holds the CRD, \`samples/${crd.kind.toLowerCase()}.yaml\` an example object
(\`kubectl apply -n default -f samples/${crd.kind.toLowerCase()}.yaml\`). After editing the CRD's schema,
regenerate the types: \`npm run gen:types\`.
`
    : ''
}`;
}
