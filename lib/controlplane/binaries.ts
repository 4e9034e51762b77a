/**
 * Where the control plane binaries live: a per-version cache outside the repository,
 * filled by scripts/build-control-plane.sh (the one place that knows how to build them).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log/index.js';

export const BINARIES = ['etcd', 'kube-apiserver', 'kube-scheduler', 'kube-controller-manager'] as const;

/**
 * The repository root, found by walking up from this module so it works both from
 * lib/controlplane/*.ts (jest) and from dist/lib/controlplane/*.js (the built CLI).
 */
export function projectRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'scripts', 'build-control-plane.sh')) && existsSync(join(dir, 'package.json')))
      return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`ts-kcm: cannot find the project root above ${from}`);
    dir = parent;
  }
}

export interface PinnedVersions {
  kubernetes: string;
  etcd: string;
}

/** Versions pinned by the wrapper Go modules' require lines (scripts/k8s/*\/go.mod). */
export function pinnedVersions(root: string = projectRoot()): PinnedVersions {
  const requireOf = (mod: string, path: string): string => {
    const text = readFileSync(join(root, 'scripts', 'k8s', mod, 'go.mod'), 'utf8');
    const re = new RegExp(`^require\\s+${path.replace(/[.]/g, '\\.')}\\s+(\\S+)`, 'm');
    const m = re.exec(text);
    if (!m?.[1]) throw new Error(`ts-kcm: no "require ${path}" line in scripts/k8s/${mod}/go.mod`);
    return m[1];
  };
  return {
    kubernetes: requireOf('kubernetes', 'k8s.io/kubernetes'),
    etcd: requireOf('etcd', 'go.etcd.io/etcd/server/v3'),
  };
}

/** Same cache path rule as the build script, so a finished build is found without running it. */
export function cachedBinDir(versions: PinnedVersions, env: NodeJS.ProcessEnv = process.env): string {
  const root = env.TS_KCM_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ts-kcm');
  return join(root, 'k8s', `${versions.kubernetes}-etcd-${versions.etcd}`);
}

export type BinaryName = (typeof BINARIES)[number];

export function hasAllBinaries(binDir: string, needed: readonly BinaryName[] = BINARIES): boolean {
  return needed.every((name) => {
    try {
      accessSync(join(binDir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The directory holding the `needed` binaries (default all four). Runs the build script for
 * the missing ones only — a first start without scheduler or controller-manager then skips
 * minutes of Go builds; its progress goes straight to our stderr.
 */
export async function locateBinaries(
  logger: Logger,
  needed: readonly BinaryName[] = BINARIES,
): Promise<string> {
  const root = projectRoot();
  const cached = cachedBinDir(pinnedVersions(root));
  if (hasAllBinaries(cached, needed)) return cached;
  logger.info('control plane binaries missing; building them', { dir: cached });
  const script = join(root, 'scripts', 'build-control-plane.sh');
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [script, ...needed], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`ts-kcm: ${script} exited with code ${String(code)}`));
    });
  });
  const lines = out.trim().split('\n');
  const binDir = lines[lines.length - 1]?.trim() ?? '';
  if (!hasAllBinaries(binDir, needed))
    throw new Error(`ts-kcm: build script reported ${binDir} but binaries are missing there`);
  return binDir;
}
