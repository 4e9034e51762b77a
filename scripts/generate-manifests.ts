/**
 * Writes manifests/ from lib/manifests (the render code lives there; `ts-kcm manifests`
 * prints the same objects). `npm run manifests` regenerates; scripts/generate-manifests.test.ts
 * fails when the committed files drift from what this renders.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinControllers } from '../controllers/index.js';
import { renderManifestFiles } from '../lib/manifests/index.js';

/** The CRDs the base lists: whatever manifests/crds/ holds now, file name → content. */
export function crdFilesIn(manifestsDir: string): Record<string, string> {
  const dir = join(manifestsDir, 'crds');
  if (!existsSync(dir)) return {};
  const names = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  return Object.fromEntries(names.map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

export function renderRepositoryManifests(manifestsDir: string): Record<string, string> {
  return renderManifestFiles({ definitions: builtinControllers }, crdFilesIn(manifestsDir));
}

function main(): void {
  const dir = fileURLToPath(new URL('../../manifests/', import.meta.url));
  mkdirSync(join(dir, 'crds'), { recursive: true });
  for (const [file, text] of Object.entries(renderRepositoryManifests(dir))) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), text);
    console.log(`wrote manifests/${file}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
