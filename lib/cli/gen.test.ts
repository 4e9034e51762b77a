import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import { generateCRDTypes, generateTypesFiles, parseCRDs } from './gen.js';
import { ExitError } from './exit.js';

const sample = fileURLToPath(new URL('./testdata/widgets-crd.yaml', import.meta.url));

describe('ts-kcm gen types', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ts-kcm-gen-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes an interface and a ResourceRef per served version, and aliases the storage version', async () => {
    const [crd] = parseCRDs(readFileSync(sample, 'utf8'), 'widgets-crd.yaml');
    const { name, content } = await generateCRDTypes(crd!);
    expect(name).toBe('widget.ts');
    expect(content).toContain("import { resourceRef, type ObjectMeta } from 'ts-kcm';");
    expect(content).toContain('export interface WidgetV1Alpha1 {');
    expect(content).toContain('export interface WidgetV1 {');
    expect(content).not.toContain('WidgetV0'); // not served
    expect(content).toContain('export type Widget = WidgetV1;');
    expect(content).toContain(
      [
        'export const widgetV1 = resourceRef<WidgetV1>({',
        "  group: 'example.com',",
        "  version: 'v1',",
        "  resource: 'widgets',",
        "  kind: 'Widget',",
        '  namespaced: true,',
        '});',
      ].join('\n'),
    );
  });

  it("maps Kubernetes' schema extensions and keeps required fields", async () => {
    const [crd] = parseCRDs(readFileSync(sample, 'utf8'), 'widgets-crd.yaml');
    const { content } = await generateCRDTypes(crd!);
    expect(content).toContain('metadata: ObjectMeta;'); // a KubeObject
    expect(content).toContain("color: 'red' | 'blue';"); // enum, required
    expect(content).toContain('replicas?: number | string;'); // x-kubernetes-int-or-string
    expect(content).toMatch(/extra\?: \{\s+\[k: string\]: unknown \| undefined;/); // preserve-unknown-fields
    expect(content).toMatch(/export interface WidgetV1Spec \{\s+color/); // named spec and status
    expect(content).toContain('export interface WidgetV1Status {');
    expect(content).not.toMatch(/size\?: number;\s+\[k: string\]/); // pruned: no index signature
  });

  it('names one served version after the kind alone', async () => {
    const [crd] = parseCRDs(readFileSync(sample, 'utf8'), 'widgets-crd.yaml');
    crd!.spec.versions = crd!.spec.versions.filter((v) => v.name === 'v1');
    const { content } = await generateCRDTypes(crd!);
    expect(content).toContain('export interface Widget {');
    expect(content).toContain('export interface WidgetSpec {');
    expect(content).toContain('export const widgetV1 = resourceRef<Widget>(');
  });

  it('writes one file per CRD into --out', async () => {
    const out = join(tmp, 'types');
    expect(await generateTypesFiles([sample], out)).toEqual([join(out, 'widget.ts')]);
    expect(readFileSync(join(out, 'widget.ts'), 'utf8')).toContain('export interface WidgetV1 {');
  });

  it('rejects a file without a CRD with a usage error naming it', async () => {
    const bad = join(tmp, 'not-a-crd.yaml');
    writeFileSync(bad, 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n');
    const err = await generateTypesFiles([bad], tmp).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExitError);
    expect((err as ExitError).exitCode).toBe(2);
    expect((err as ExitError).message).toContain('not-a-crd.yaml: no CustomResourceDefinition');
    const missing = await generateTypesFiles([join(tmp, 'nope.yaml')], tmp).catch((e: unknown) => e);
    expect((missing as ExitError).exitCode).toBe(2);
  });
});
