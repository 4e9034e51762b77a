/**
 * The path a new user takes, from a clean temp dir, with only the packed tarball:
 * npm pack → ts-kcm new controller (with a CRD) → npm install from the tarball (offline-capable)
 * → the scaffold's own npm test → ts-kcm run --plugin reconciles a custom object against the
 * shared test control plane → ts-kcm manifests --plugin passes kubectl apply --dry-run=server.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  createTestNamespace,
  deleteNamespace,
  kubectl,
  runCommand,
  testKubeconfigPath,
  waitFor,
} from '../support/cluster.js';
import { usePrivateControlPlane } from '../support/private-control-plane.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Node 24 from this repository's devDependencies, first on PATH for npm and the scaffold. */
const nodeBin = join(repoRoot, 'node_modules', '.bin');
const env = { ...process.env, PATH: `${nodeBin}:${process.env.PATH ?? ''}` };

const NAME = 'widget-controller';

function step(label: string, started: number): void {
  process.stderr.write(`user-path: ${label} at ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

async function run(file: string, args: string[], cwd: string, timeoutMs = 180_000) {
  const result = await runCommand('bash', ['-c', `cd "$0" && exec "$@"`, cwd, file, ...args], {
    env,
    timeoutMs,
  });
  if (result.code !== 0) {
    throw new Error(`${file} ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

// Its own control plane: other tests' leftovers must not meet its dry runs and its
// no-Forbidden check (see test/support/private-control-plane.ts).
usePrivateControlPlane();

describe('the user path', () => {
  const work = mkdtempSync(join(tmpdir(), 'ts-kcm-user-path-'));
  let namespace: string | undefined;
  afterAll(async () => {
    if (namespace) await deleteNamespace(namespace);
    rmSync(work, { recursive: true, force: true });
  });

  it('pack, scaffold with a CRD, install, test, run the plugin, render manifests', async () => {
    const started = Date.now();
    // dist/ is built by npm test's pretest; pack it as a user would get it.
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], repoRoot);
    const tarball = join(
      work,
      readdirSync(work).find((f) => f.endsWith('.tgz'))!,
    );
    step('npm pack', started);

    const tsKcm = join(repoRoot, 'dist', 'controllers', 'main.js');
    await run(
      'node',
      [
        tsKcm,
        'new',
        'controller',
        NAME,
        '--kind',
        'Widget',
        '--group',
        'example.com',
        '--version',
        'v1',
        '--ts-kcm',
        `file:${tarball}`,
      ],
      work,
    );
    const project = join(work, NAME);
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], project, 240_000);
    step('npm install', started);

    await run('npm', ['test'], project, 300_000);
    step('scaffold npm test', started);

    namespace = await createTestNamespace('user-path');
    await kubectl(['apply', '-f', join(project, 'crds')]);
    await waitFor(async () => (await kubectl(['get', 'widgets', '-n', namespace!])).code === 0, {
      timeoutMs: 30_000,
      description: 'the Widget CRD to be served',
    });
    await kubectl(['apply', '-n', namespace, '-f', join(project, 'samples', 'widget.yaml')]);

    const manager = spawn(
      'npm',
      [
        'start',
        '--',
        '--kubeconfig',
        testKubeconfigPath(),
        '--leader-elect=false',
        '--metrics-bind-address=0',
        '--health-probe-bind-address=0',
      ],
      { cwd: project, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    manager.stdout.on('data', (d: Buffer) => (output += d.toString()));
    manager.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await waitFor(
        async () => {
          const got = await kubectl(['get', 'widget', 'widget-sample', '-n', namespace!, '-o', 'json']);
          const widget = JSON.parse(got.stdout) as {
            status?: { conditions?: { type: string; status: string }[] };
          };
          return widget.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
        },
        { timeoutMs: 60_000, intervalMs: 250, description: `Ready on widget-sample (output: ${output})` },
      );
    } finally {
      try {
        process.kill(-manager.pid!, 'SIGINT');
      } catch {
        // already gone
      }
    }
    step('ts-kcm run --plugin reconciled', started);

    const manifests = await run(
      'npx',
      [
        'ts-kcm',
        'manifests',
        '--plugin',
        './src/controller.ts',
        `--controllers=${NAME}`,
        '--namespace',
        namespace,
      ],
      project,
    );
    const dryRun = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input: manifests.stdout });
    // The rendered Namespace is the test's own, made without kubectl apply: kubectl warns that
    // it will add its last-applied annotation. Anything else on stderr is a failure.
    const lastApplied =
      /^Warning: resource namespaces\/\S+ is missing the kubectl\.kubernetes\.io\/last-applied-configuration annotation.*\n/m;
    expect(dryRun.stderr.replace(lastApplied, '')).toBe('');
    expect(dryRun.stdout).toMatch(/deployment\.apps\/\S+ created \(server dry run\)/);
    expect(dryRun.code).toBe(0);
    step('manifests accepted by kubectl apply --dry-run=server', started);
  }, 300_000);
});
