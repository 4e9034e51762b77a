import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { NODE_FLAGS } from './node-flags.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

describe('NODE_FLAGS', () => {
  it('is what the Dockerfile entrypoint passes to node, in order, before the script', () => {
    const line = read('Dockerfile')
      .split('\n')
      .find((l) => l.startsWith('ENTRYPOINT'));
    expect(line).toBeDefined();
    const argv = JSON.parse(line!.slice('ENTRYPOINT'.length)) as string[];
    expect(argv).toEqual(['node', ...NODE_FLAGS, 'dist/controllers/main.js']);
  });

  it("is what npm run image's entrypoint passes to node", () => {
    const entrypoint = [...read('scripts/image.sh').matchAll(/--config\.entrypoint[ =](\S+)/g)].map(
      (m) => m[1],
    );
    expect(entrypoint).toEqual(['/usr/local/bin/node', ...NODE_FLAGS, 'dist/controllers/main.js']);
  });

  it('is what npm start passes to node', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`exec node ${NODE_FLAGS.join(' ')} dist/controllers/main.js run`);
  });
});
