/**
 * `ts-kcm controlplane up|down|status`: a real local kube-apiserver + etcd for development,
 * left running in the background between commands (state in DIR/state.json).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_SERVICE_CLUSTER_IP_RANGE } from '../controlplane/flags.js';
import { createLogger } from '../log/index.js';
import { EXIT_NOT_RUNNING, ExitError } from './exit.js';
import { verbosity } from './verbosity.js';

/** Default DIR: a dot-folder in the working directory (already git-ignored). */
export const DEFAULT_CONTROLPLANE_DIR = '.ts-kcm/controlplane';

function dirOption(): Option {
  return new Option('--dir <dir>', 'directory holding the control plane state, data and logs').default(
    DEFAULT_CONTROLPLANE_DIR,
  );
}

interface UpOptions {
  dir: string;
  scheduler?: boolean;
  kubeControllerManager?: string;
  serviceClusterIpRange: string;
  binDir?: string;
  v: number;
}

export function controlplaneCommand(): Command {
  const cmd = new Command('controlplane').description(
    'run a local kube-apiserver + etcd (and optional scheduler, controller-manager)',
  );

  cmd
    .command('up')
    .description('start the control plane in the background and print the admin kubeconfig path')
    .addOption(dirOption())
    .option('--scheduler', 'also run kube-scheduler')
    .option(
      '--kube-controller-manager <controllers>',
      'also run kube-controller-manager with these --controllers',
    )
    .option(
      '--service-cluster-ip-range <cidr>',
      'service CIDR of the apiserver',
      DEFAULT_SERVICE_CLUSTER_IP_RANGE,
    )
    .option(
      '--bin-dir <dir>',
      'directory with etcd and the kube-* binaries (default: build cache, built if missing)',
    )
    .option('-v, --v <level>', 'log verbosity', verbosity, 0)
    .action(async (opts: UpOptions) => {
      const logger = createLogger({ format: 'text', verbosity: opts.v });
      const { ControlPlane } = await import('../controlplane/index.js');
      const cp = await ControlPlane.start({
        dir: opts.dir,
        scheduler: opts.scheduler ?? false,
        kubeControllerManager: opts.kubeControllerManager,
        serviceClusterIPRange: opts.serviceClusterIpRange,
        binDir: opts.binDir,
        logger,
      });
      // stdout carries only the path, so `export KUBECONFIG=$(ts-kcm controlplane up)` works.
      process.stdout.write(`${cp.kubeconfigPath}\n`);
    });

  cmd
    .command('down')
    .description('stop the control plane and remove its data')
    .addOption(dirOption())
    .action(async (opts: { dir: string }) => {
      if (!existsSync(join(opts.dir, 'state.json'))) {
        process.stderr.write(`no control plane in ${opts.dir}; nothing to stop\n`);
        return;
      }
      const { ControlPlane } = await import('../controlplane/index.js');
      await ControlPlane.load(opts.dir).stop();
    });

  cmd
    .command('status')
    .description(`show which components run (exit ${EXIT_NOT_RUNNING} if any is down)`)
    .addOption(dirOption())
    .action(async (opts: { dir: string }) => {
      if (!existsSync(join(opts.dir, 'state.json'))) {
        throw new ExitError(EXIT_NOT_RUNNING, `no control plane in ${opts.dir}`);
      }
      const { ControlPlane } = await import('../controlplane/index.js');
      const cp = ControlPlane.load(opts.dir);
      const status = cp.status();
      const lines = [
        `apiserver  ${cp.apiserverURL}`,
        `kubeconfig ${cp.kubeconfigPath}`,
        `kubeconfig ${cp.certKubeconfigPath} (client certificate, as kind writes)`,
      ];
      for (const c of status) {
        lines.push(
          `${c.name.padEnd(24)} ${c.running ? 'running' : 'stopped'}${c.pid ? `  pid ${c.pid}` : ''}`,
        );
      }
      process.stdout.write(lines.join('\n') + '\n');
      if (!status.every((c) => c.running)) throw new ExitError(EXIT_NOT_RUNNING);
    });

  return cmd;
}
