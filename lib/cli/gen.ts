/**
 * `ts-kcm gen types CRD.yaml... [--out DIR]`: one TypeScript file per CustomResourceDefinition,
 * with an interface per served version generated from its openAPIV3Schema by
 * json-schema-to-typescript, and a `ResourceRef` constant per served version for the client,
 * informers and `defineController({ for })`.
 *
 * The schema is adjusted for what Kubernetes means by it before generation: fields the
 * apiserver prunes are not there (no index signatures unless x-kubernetes-preserve-unknown-fields),
 * x-kubernetes-int-or-string is `number | string`, and metadata is ts-kcm's ObjectMeta, so a
 * generated type is a KubeObject.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Command } from 'commander';
import { loadAll } from 'js-yaml';
import type { JSONSchema } from 'json-schema-to-typescript';
import { EXIT_USAGE, ExitError } from './exit.js';

interface CRDVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: JSONSchema };
}

export interface CRD {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string };
  spec: {
    group: string;
    names: { kind: string; plural: string };
    scope: 'Namespaced' | 'Cluster';
    versions: CRDVersion[];
  };
}

export interface GeneratedFile {
  /** File name, e.g. `widget.ts` for kind Widget. */
  name: string;
  content: string;
}

/** Every CRD in a YAML stream (other kinds are skipped); throws when there is none. */
export function parseCRDs(yamlText: string, source: string): CRD[] {
  let docs: unknown[];
  try {
    // Plain js-yaml, not client-node's loadAllYaml: that one maps a CRD onto its model classes,
    // renaming `enum` and the x-kubernetes-* keys the generator needs.
    docs = loadAll(yamlText);
  } catch (err) {
    throw new Error(`${source}: not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  const crds = docs.filter(
    (d): d is CRD => (d as { kind?: string } | null)?.kind === 'CustomResourceDefinition',
  );
  if (crds.length === 0) throw new Error(`${source}: no CustomResourceDefinition in it`);
  for (const crd of crds) {
    const s = crd.spec as Partial<CRD['spec']> | undefined;
    if (!s?.group || !s.names?.kind || !s.names.plural || !Array.isArray(s.versions)) {
      throw new Error(`${source}: CRD ${crd.metadata?.name ?? '?'} lacks spec.group, names or versions`);
    }
  }
  return crds;
}

/** `v1alpha1` → `V1Alpha1`: json-schema-to-typescript's own rule for names, so ours match its. */
const pascal = (s: string): string =>
  s
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('')
    .replace(/([0-9])([a-z])/g, (_, d: string, c: string) => d + c.toUpperCase());
const camel = (s: string): string => {
  const p = pascal(s);
  return p[0]!.toLowerCase() + p.slice(1);
};

/** A copy of a structural schema with Kubernetes' extensions turned into JSON Schema json2ts understands. */
export function kubernetesSchema(schema: JSONSchema): JSONSchema {
  const walk = (node: JSONSchema): JSONSchema => {
    const n: Record<string, unknown> = { ...node };
    if (n['x-kubernetes-int-or-string'] === true) {
      delete n.type;
      n.anyOf = [{ type: 'integer' }, { type: 'string' }];
    }
    if (n['x-kubernetes-preserve-unknown-fields'] === true && n.additionalProperties === undefined) {
      n.additionalProperties = true;
    }
    if (n.properties && typeof n.properties === 'object') {
      n.properties = Object.fromEntries(
        Object.entries(n.properties as Record<string, JSONSchema>).map(([k, v]) => [k, walk(v)]),
      );
    }
    if (n.items && typeof n.items === 'object' && !Array.isArray(n.items))
      n.items = walk(n.items as JSONSchema);
    if (n.additionalProperties && typeof n.additionalProperties === 'object') {
      n.additionalProperties = walk(n.additionalProperties as JSONSchema);
    }
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
      if (Array.isArray(n[key])) n[key] = (n[key] as JSONSchema[]).map(walk);
    }
    return n as JSONSchema;
  };
  return walk(schema);
}

/** The TypeScript source for one CRD: interfaces and a ResourceRef per served version. */
export async function generateCRDTypes(crd: CRD): Promise<GeneratedFile> {
  const { group, names, scope } = crd.spec;
  const served = crd.spec.versions.filter((v) => v.served !== false);
  if (served.length === 0) throw new Error(`CRD ${crd.metadata?.name ?? names.plural}: no served version`);
  const several = served.length > 1;
  // Loaded here, not at the top: every `ts-kcm run` imports this module through the CLI, and
  // the generator (with prettier) would add ~100 ms and ~30 MB to each start-up.
  const { compile } = await import('json-schema-to-typescript');
  const parts: string[] = [];
  for (const version of served) {
    const typeName = several ? `${names.kind}${pascal(version.name)}` : names.kind;
    const root = version.schema?.openAPIV3Schema ?? { type: 'object' };
    const schema = kubernetesSchema(root);
    const props = { ...(schema.properties ?? {}) } as Record<string, JSONSchema>;
    props.apiVersion = { type: 'string' };
    props.kind = { type: 'string' };
    props.metadata = { tsType: 'ObjectMeta' } as JSONSchema;
    for (const sub of ['spec', 'status']) {
      if (props[sub]) props[sub] = { ...props[sub], title: `${typeName}${pascal(sub)}` };
    }
    const required = [...new Set([...((schema.required as string[] | undefined) ?? []), 'metadata'])];
    const ts = await compile({ ...schema, title: typeName, properties: props, required }, typeName, {
      bannerComment: '',
      additionalProperties: false,
      strictIndexSignatures: true,
      unknownAny: true,
      style: { singleQuote: true, printWidth: 110, trailingComma: 'all' },
    });
    parts.push(ts.trim());
    const refName = `${camel(names.kind)}${pascal(version.name)}`;
    const ref = [
      `group: '${group}'`,
      `version: '${version.name}'`,
      `resource: '${names.plural}'`,
      `kind: '${names.kind}'`,
      `namespaced: ${String(scope === 'Namespaced')}`,
    ];
    parts.push(
      `/** ${group}/${version.name} ${names.plural}${version.storage ? ' (the storage version)' : ''}. */\n` +
        `export const ${refName} = resourceRef<${typeName}>({\n${ref.map((l) => `  ${l},\n`).join('')}});`,
    );
  }
  const storage = served.find((v) => v.storage) ?? served[0]!;
  if (several) {
    parts.push(
      `/** The storage version. */\nexport type ${names.kind} = ${names.kind}${pascal(storage.name)};`,
    );
  }
  const header = [
    `// Generated by \`ts-kcm gen types\` from the CustomResourceDefinition ${crd.metadata?.name ?? `${names.plural}.${group}`}. Do not edit.`,
    `import { resourceRef, type ObjectMeta } from 'ts-kcm';`,
  ].join('\n');
  return { name: `${names.kind.toLowerCase()}.ts`, content: `${header}\n\n${parts.join('\n\n')}\n` };
}

/** Generates the files for every CRD in `paths` into `outDir`; returns the paths written. */
export async function generateTypesFiles(paths: string[], outDir: string): Promise<string[]> {
  const files: GeneratedFile[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ExitError(EXIT_USAGE, `error: ${path}: ${(err as Error).message}`);
    }
    let crds: CRD[];
    try {
      crds = parseCRDs(text, basename(path));
    } catch (err) {
      throw new ExitError(EXIT_USAGE, `error: ${(err as Error).message}`);
    }
    for (const crd of crds) files.push(await generateCRDTypes(crd));
  }
  mkdirSync(outDir, { recursive: true });
  return files.map((f) => {
    const target = join(outDir, f.name);
    writeFileSync(target, f.content);
    return target;
  });
}

export function genCommand(): Command {
  const gen = new Command('gen').description('generate code');
  gen
    .command('types')
    .description("TypeScript interfaces and ResourceRefs from CustomResourceDefinitions' openAPIV3Schema")
    .argument('<crd...>', 'CRD YAML files')
    .option('--out <dir>', 'directory for the generated .ts files', '.')
    .action(async (crds: string[], flags: { out: string }) => {
      for (const written of await generateTypesFiles(crds, flags.out))
        process.stderr.write(`wrote ${written}\n`);
    });
  return gen;
}
