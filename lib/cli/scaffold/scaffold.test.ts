import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { ExitError } from '../exit.js';
import { newController } from '../new.js';
import { scaffoldFiles, validateScaffold } from './index.js';

describe('ts-kcm new controller', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ts-kcm-new-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('validates name, group, version and kind', () => {
    expect(validateScaffold({ name: 'widget-controller' })).toBeUndefined();
    expect(validateScaffold({ name: 'Widget' })).toMatch(/DNS-1123/);
    expect(validateScaffold({ name: 'a'.repeat(64) })).toMatch(/DNS-1123/);
    expect(validateScaffold({ name: 'w', kind: 'widget' })).toMatch(/invalid kind/);
    expect(validateScaffold({ name: 'w', kind: 'Widget', group: 'nodot' })).toMatch(/invalid group/);
    expect(validateScaffold({ name: 'w', kind: 'Widget', version: '1' })).toMatch(/invalid version/);
    expect(validateScaffold({ name: 'w', group: 'example.com' })).toMatch(/need --kind/);
  });

  it('makes a project with package.json, tsconfig, controller, both tests and a README', () => {
    const files = scaffoldFiles({ name: 'pod-logger', tsKcmVersion: '^0.1.0' });
    expect(Object.keys(files).sort()).toEqual(
      [
        '.gitignore',
        'README.md',
        'package.json',
        'src/controller.integration.test.ts',
        'src/controller.test.ts',
        'src/controller.ts',
        'tsconfig.json',
      ].sort(),
    );
    const pkg = JSON.parse(files['package.json']!) as Record<string, Record<string, string>>;
    expect(pkg.dependencies).toEqual({ 'ts-kcm': '^0.1.0' });
    expect(pkg.devDependencies!.node).toBe('^24');
    expect(pkg.scripts!.start).toBe('ts-kcm run --plugin ./src/controller.ts --controllers=pod-logger');
    expect(files['src/controller.ts']).toContain("name: 'pod-logger'");
    expect(files['src/controller.ts']).toContain('defineController');
    expect(files['src/controller.test.ts']).toContain('FakeKubeClient');
    expect(files['src/controller.integration.test.ts']).toContain('startControlPlane');
  });

  it('with --kind: a namespaced CRD (plural kind+s, status subresource), types, a sample without namespace', async () => {
    const dir = await newController(
      'widget-controller',
      { kind: 'Widget', group: 'example.com', version: 'v1', tsKcm: '^0.1.0' },
      tmp,
    );
    const crd = readFileSync(join(dir, 'crds/widgets.example.com.yaml'), 'utf8');
    expect(crd).toContain('scope: Namespaced');
    expect(crd).toContain('plural: widgets');
    expect(crd).toMatch(/subresources:\n\s+status: \{\}/);
    expect(crd).not.toMatch(/required:\s*\[?\s*message/);
    const sample = readFileSync(join(dir, 'samples/widget.yaml'), 'utf8');
    expect(sample).toContain('kind: Widget');
    expect(sample).not.toContain('namespace');
    const types = readFileSync(join(dir, 'src/generated/widget.ts'), 'utf8');
    expect(types).toContain('export interface Widget {');
    expect(types).toContain('export const widgetV1 = resourceRef<Widget>(');
    const controller = readFileSync(join(dir, 'src/controller.ts'), 'utf8');
    expect(controller).toContain("from './generated/widget.ts'");
    expect(controller).toContain("type: 'Ready'");
  });

  it('refuses bad input and a non-empty dir with exit code 2, writing nothing', async () => {
    const attempt = (name: string, flags: Parameters<typeof newController>[1]) =>
      newController(name, flags, tmp).then(
        () => undefined,
        (e: unknown) => e as ExitError,
      );
    expect((await attempt('Bad_Name', {}))?.exitCode).toBe(2);
    expect(existsSync(join(tmp, 'Bad_Name'))).toBe(false);
    expect((await attempt('ok', { kind: 'lower' }))?.exitCode).toBe(2);
    expect(existsSync(join(tmp, 'ok'))).toBe(false);
    mkdirSync(join(tmp, 'full'));
    writeFileSync(join(tmp, 'full', 'keep.txt'), 'x');
    const err = await attempt('full', {});
    expect(err?.exitCode).toBe(2);
    expect(err?.message).toContain('exists and is not empty');
    expect(readdirSync(join(tmp, 'full'))).toEqual(['keep.txt']);
  });
});
