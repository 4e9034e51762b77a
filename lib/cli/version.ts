/** `ts-kcm version`: our version, the Node runtime, and the pinned control plane versions. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { pinnedVersions, projectRoot } from '../controlplane/binaries.js';

export function versionText(): string {
  const root = projectRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string };
  const pinned = pinnedVersions(root);
  return [
    `ts-kcm ${pkg.version ?? 'unknown'}`,
    `node ${process.version}`,
    `kubernetes ${pinned.kubernetes}`,
    `etcd ${pinned.etcd}`,
  ].join('\n');
}

export function versionCommand(): Command {
  return new Command('version').description('print versions').action(() => {
    process.stdout.write(versionText() + '\n');
  });
}
