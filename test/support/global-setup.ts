/**
 * Starts ONE real control plane (etcd + kube-apiserver + kube-scheduler) for the whole
 * jest run and publishes it to the tests through environment variables:
 *   TS_KCM_TEST_KUBECONFIG  admin kubeconfig path
 *   TS_KCM_TEST_DIR         control plane directory (ControlPlane.load(dir) works on it)
 * Skipped when TS_KCM_SKIP_CONTROLPLANE=1, when only the `unit` project is selected, or when
 * TS_KCM_TEST_KUBECONFIG is already set (tests then use that cluster as is).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { load as loadYaml } from 'js-yaml';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { registerTypeScriptHooks } from './ts-loader.mjs';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Marks that this jest process started the control plane, so teardown only stops its own. */
export const OWNED_ENV = 'TS_KCM_TEST_CONTROLPLANE_OWNED';

/** Node, not jest, loads the setup's imports: compile lib/ through our hooks, then import. */
async function loadModules() {
  registerTypeScriptHooks();
  const { ControlPlane } = await import('../../lib/controlplane/index.js');
  const { createLogger } = await import('../../lib/log/index.js');
  const { startWatchdog } = await import('./watchdog.js');
  const { createKubeClient, loadKubeConfig } = await import('../../lib/client/index.js');
  const { installCRDs } = await import('../../lib/sdk/testing.js');
  return { ControlPlane, createLogger, startWatchdog, createKubeClient, loadKubeConfig, installCRDs };
}

/**
 * Projects named by --selectProjects on jest's command line, or undefined. Jest 29 keeps
 * them out of the config it hands to globalSetup, so read them where jest did.
 */
export function selectedProjects(argv: string[] = process.argv): string[] | undefined {
  const i = argv.findIndex((a) => a === '--selectProjects' || a.startsWith('--selectProjects='));
  if (i < 0) return undefined;
  const flag = argv[i] ?? '';
  if (flag.includes('=')) return flag.slice(flag.indexOf('=') + 1).split(',');
  const names: string[] = [];
  for (const a of argv.slice(i + 1)) {
    if (a.startsWith('-')) break;
    names.push(a);
  }
  return names;
}

export default async function globalSetup(): Promise<void> {
  if (process.env.TS_KCM_SKIP_CONTROLPLANE === '1') return;
  if (process.env.TS_KCM_TEST_KUBECONFIG) return;
  const selected = selectedProjects();
  if (selected && !selected.includes('integration')) return;

  const { ControlPlane, createLogger, startWatchdog, createKubeClient, loadKubeConfig, installCRDs } =
    await loadModules();
  const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-test-'));
  const started = Date.now();
  process.stderr.write(`\nts-kcm: starting the test control plane in ${dir}\n`);
  let cp: Awaited<ReturnType<typeof ControlPlane.start>>;
  try {
    cp = await ControlPlane.start({
      dir,
      scheduler: true, // DRA end-to-end tests need allocation and binding
      logger: createLogger({ format: 'text', verbosity: 0 }),
    });
  } catch (err) {
    process.stderr.write(`ts-kcm: test control plane failed to start: ${String(err)}\n`);
    throw err;
  }
  // The cluster the tests meet is one where ts-kcm is installed: its CRDs (manifests/crds/)
  // are there, so every default controller syncs. Tests of a missing CRD use their own.
  const client = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }));
  try {
    const crdDir = join(repoRoot, 'manifests', 'crds');
    const crds = readdirSync(crdDir)
      .filter((f) => f.endsWith('.yaml'))
      .map(
        (f) => loadYaml(readFileSync(join(crdDir, f), 'utf8')) as Parameters<typeof installCRDs>[1][number],
      );
    await installCRDs(client, crds, 'ts-kcm-test-setup');
  } finally {
    await client.close();
  }
  if (process.env.TS_KCM_KEEP_CONTROLPLANE !== '1') {
    startWatchdog(dir);
    // Runs on process.exit() even when teardown did not (a no-op after a normal teardown).
    process.once('exit', () => cp.killNowSync());
  }
  process.env.TS_KCM_TEST_KUBECONFIG = cp.kubeconfigPath;
  process.env.TS_KCM_TEST_DIR = cp.dir;
  process.env[OWNED_ENV] = '1';
  process.stderr.write(
    `ts-kcm: test control plane ready in ${Date.now() - started} ms ` +
      `(${cp.startup.attempts} attempt(s)), kubeconfig ${cp.kubeconfigPath}\n`,
  );
}
