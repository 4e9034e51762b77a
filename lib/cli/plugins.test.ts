import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import type { ControllerDefinition } from '../controller/types.js';
import { ExitError } from './exit.js';
import { loadPlugin, pluginSpecsFromArgv, withPlugins } from './plugins.js';

const definition = (name: string) =>
  `{ name: '${name}', enabledByDefault: true, flags: [{ name: 'concurrent-${name}-syncs', description: 'w', defaultValue: 1 }], rbac: [], create: () => ({ run: async () => {} }) }`;

const builtin: ControllerDefinition = {
  name: 'builtin-controller',
  enabledByDefault: true,
  flags: [],
  rbac: [],
  create: () => ({ run: async () => {} }),
};

/** Plugins are real ESM files on disk, imported the way the CLI imports them. */
describe('plugins', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-plugins-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (path: string, text: string): void => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  write('one.mjs', `export default ${definition('one')};\n`);
  write('list.mjs', `export const controllers = [${definition('two')}, ${definition('three')}];\n`);
  write('nothing.mjs', 'export const x = 1;\n');
  write('bad-item.mjs', `export default [${definition('ok')}, { name: 'half' }];\n`);
  write('broken.mjs', "throw new Error('boom at import');\n");
  write('clash.mjs', `export default ${definition('builtin-controller')};\n`);
  write(
    'node_modules/cjs-resolvable/package.json',
    '{"name":"cjs-resolvable","type":"module","main":"index.js"}',
  );
  write('node_modules/cjs-resolvable/index.js', `export default ${definition('pkg-main')};\n`);
  write(
    'node_modules/@acme/import-only/package.json',
    '{"name":"@acme/import-only","type":"module","exports":{".":{"import":"./lib/x.js"}}}',
  );
  write('node_modules/@acme/import-only/lib/x.js', `export default ${definition('pkg-import')};\n`);

  const failure = async (p: Promise<unknown>): Promise<ExitError> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExitError);
    expect((err as ExitError).exitCode).toBe(2);
    return err as ExitError;
  };

  it('finds --plugin values before commander parses, up to --', () => {
    expect(
      pluginSpecsFromArgv(['run', '--plugin', './a.js', '--plugin=b', '-v', '2', '--', '--plugin', 'c']),
    ).toEqual(['./a.js', 'b']);
  });

  it('loads a default export, a named `controllers` list, and packages from cwd node_modules', async () => {
    expect((await loadPlugin('./one.mjs', dir)).map((d) => d.name)).toEqual(['one']);
    expect((await loadPlugin(join(dir, 'list.mjs'), '/')).map((d) => d.name)).toEqual(['two', 'three']);
    expect((await loadPlugin('cjs-resolvable', dir)).map((d) => d.name)).toEqual(['pkg-main']);
    expect((await loadPlugin('@acme/import-only', dir)).map((d) => d.name)).toEqual(['pkg-import']);
  });

  it('appends plugin controllers after the built-in ones', async () => {
    const all = await withPlugins([builtin], ['./one.mjs', './list.mjs'], dir);
    expect(all.map((d) => d.name)).toEqual(['builtin-controller', 'one', 'two', 'three']);
  });

  it('names the plugin in every failure, with exit code 2', async () => {
    expect((await failure(loadPlugin('./missing.mjs', dir))).message).toMatch(
      /--plugin \.\/missing\.mjs: no such file/,
    );
    expect((await failure(loadPlugin('not-installed', dir))).message).toMatch(
      /--plugin not-installed: package not found/,
    );
    expect((await failure(loadPlugin('./broken.mjs', dir))).message).toMatch(
      /--plugin \.\/broken\.mjs: failed to load .*boom at import/,
    );
    expect((await failure(loadPlugin('./nothing.mjs', dir))).message).toMatch(/exports no controllers/);
    expect((await failure(loadPlugin('./bad-item.mjs', dir))).message).toMatch(
      /item 1 of its export is not a controller/,
    );
    expect((await failure(withPlugins([builtin], ['./clash.mjs'], dir))).message).toBe(
      'error: --plugin ./clash.mjs: controller name "builtin-controller" is already taken by a built-in controller',
    );
    const aliased = { ...builtin, aliases: ['one'] };
    expect((await failure(withPlugins([aliased], ['./one.mjs'], dir))).message).toContain(
      'controller name "one" is already taken by a built-in controller',
    );
    expect((await failure(withPlugins([], ['./one.mjs', './one.mjs'], dir))).message).toContain(
      'already taken by plugin ./one.mjs',
    );
  });
});
