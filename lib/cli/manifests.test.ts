import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { afterAll, describe, expect, it, jest } from '@jest/globals';
import type { ControllerDefinition, PolicyRule } from '../controller/types.js';
import { main } from './main.js';
import { manifestObjects, manifestsYaml } from './manifests-render.js';

const def = (name: string, rbac: PolicyRule[], enabledByDefault = true): ControllerDefinition => ({
  name,
  enabledByDefault,
  flags: [],
  rbac,
  create: () => ({ run: async () => {} }),
});
const pods: PolicyRule = { apiGroups: [''], resources: ['pods'], verbs: ['list', 'get', 'watch'] };
const widgets: PolicyRule = { apiGroups: ['example.com'], resources: ['widgets'], verbs: ['watch', 'list'] };

type Obj = { kind: string; metadata: { name: string; namespace?: string }; rules?: PolicyRule[] } & Record<
  string,
  unknown
>;

describe('ts-kcm manifests', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-manifests-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('grants exactly the enabled controllers, with the Lease in a namespaced Role', () => {
    const objects = manifestObjects([def('a', [pods]), def('b', [widgets])], {
      controllers: ['*', '-b'],
      namespace: 'ops',
      image: 'me/kcm:1',
    }) as Obj[];
    expect(objects.map((o) => o.kind).sort()).toEqual(
      [
        'ClusterRole',
        'ClusterRole',
        'ClusterRoleBinding',
        'Deployment',
        'Namespace',
        'PodDisruptionBudget',
        'Role',
        'RoleBinding',
        'Service',
        'ServiceAccount',
      ].sort(),
    );
    const clusterRole = objects.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'ts-kcm')!;
    expect(JSON.stringify(clusterRole.rules)).not.toContain('widgets');
    expect(JSON.stringify(clusterRole.rules)).not.toContain('leases');
    expect(clusterRole.rules).toContainEqual({
      apiGroups: [''],
      resources: ['pods'],
      verbs: ['get', 'list', 'watch'],
    });
    expect(objects.find((o) => o.kind === 'Role')!.metadata.namespace).toBe('ops');
    expect(JSON.stringify(objects.find((o) => o.kind === 'Deployment'))).toContain('"image":"me/kcm:1"');
    expect(JSON.stringify(objects.find((o) => o.kind === 'Deployment'))).toContain('--controllers=*,-b');
  });

  it('--sharding-ring renders a Deployment on the ring and a Lease Role that can list and watch', async () => {
    let stdout = '';
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += String(chunk);
      return true;
    });
    try {
      expect(await main(['manifests', '--sharding-ring', 'workers'], [def('a', [pods])])).toBe(0);
    } finally {
      write.mockRestore();
    }
    const objects = loadAll(stdout) as Obj[];
    expect(objects.find((o) => o.kind === 'Role')!.rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        verbs: ['create', 'get', 'list', 'update', 'watch'],
      },
    ]);
    const deployment = JSON.stringify(objects.find((o) => o.kind === 'Deployment'));
    expect(deployment).toContain('--sharding-ring=workers');
    expect(deployment).toContain('--leader-elect=false');
  });

  it('prints only YAML on stdout, including --plugin controllers', async () => {
    const plugin = join(dir, 'plugin.mjs');
    writeFileSync(
      plugin,
      `export default { name: 'widget-controller', enabledByDefault: true, flags: [], rbac: ${JSON.stringify([widgets])}, create: () => ({ run: async () => {} }) };\n`,
    );
    let stdout = '';
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += String(chunk);
      return true;
    });
    try {
      expect(
        await main(['manifests', '--plugin', plugin, '--controllers=widget-controller'], [def('a', [pods])]),
      ).toBe(0);
    } finally {
      write.mockRestore();
    }
    expect(stdout).toBe(
      manifestsYaml([def('a', [pods]), def('w', [widgets])], { controllers: ['w'] }).replace(
        /--controllers=w/,
        '--controllers=widget-controller',
      ),
    );
    expect(loadAll(stdout).length).toBe(10);
    expect(stdout).toContain('widgets');
    expect(stdout).not.toContain('pods');
  });

  it('exits 2 naming the plugin when it clashes with a built-in controller', async () => {
    const errors: string[] = [];
    const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      errors.push(String(chunk));
      return true;
    });
    writeFileSync(
      join(dir, 'p.mjs'),
      `export default { name: 'a', enabledByDefault: true, flags: [], rbac: [], create() {} };\n`,
    );
    try {
      expect(await main(['run', `--plugin=${join(dir, 'p.mjs')}`], [def('a', [pods])])).toBe(2);
    } finally {
      write.mockRestore();
    }
    expect(errors.join('')).toContain('already taken by a built-in controller');
  });

  it('exits 2 naming the plugin when its flag collides with a flag of ts-kcm run', async () => {
    const errors: string[] = [];
    const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      errors.push(String(chunk));
      return true;
    });
    const plugin = join(dir, 'flag.mjs');
    writeFileSync(
      plugin,
      `export default { name: 'x', enabledByDefault: true, flags: [{ name: 'kubeconfig', description: 'x', defaultValue: 1 }], rbac: [], create() {} };\n`,
    );
    try {
      expect(await main(['run', '--plugin', plugin], [])).toBe(2);
    } finally {
      write.mockRestore();
    }
    expect(errors.join('')).toMatch(/--plugin .*flag\.mjs: .*--kubeconfig/);
  });
});
