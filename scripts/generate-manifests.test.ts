import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { renderRepositoryManifests } from './generate-manifests.js';

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'crds' ? [] : yamlFilesUnder(p);
    return f.endsWith('.yaml') ? [p] : [];
  });
}

describe('manifests/', () => {
  const files = renderRepositoryManifests('manifests');

  it.each(Object.keys(files))('%s matches what the code renders (run `npm run manifests`)', (file) => {
    expect(readFileSync(join('manifests', file), 'utf8')).toBe(files[file]);
  });

  it('holds no generated file the code no longer renders (crds/ aside)', () => {
    const onDisk = yamlFilesUnder('manifests').map((p) => relative('manifests', p));
    expect(onDisk.sort()).toEqual(Object.keys(files).sort());
  });
});
