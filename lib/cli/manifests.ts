/**
 * `ts-kcm manifests`: the YAML to deploy exactly the enabled controllers (built-in and
 * `--plugin` ones), on stdout and nothing else there, so `ts-kcm manifests | kubectl apply -f -`
 * works. The command is thin on purpose: options in, `manifestsYaml(definitions, options)` out.
 * The objects are lib/manifests' — the same renderer that writes the repository's manifests/ —
 * rendered by ./manifests-render.ts, which only this command loads (not `run`).
 */
import { Command, Option } from 'commander';
import type { ControllerDefinition } from '../controller/types.js';
import { DEFAULT_MANIFEST_OPTIONS } from '../manifests/types.js';
import { errorMessage } from '../log/index.js';
import { EXIT_USAGE, ExitError } from './exit.js';
import { pluginOption } from './plugins.js';

export interface ManifestsOptions {
  /** `--controllers`, as the flag takes it. */
  controllers: string[];
  /** Where the ServiceAccount, Lease and Deployment live. */
  namespace: string;
  image: string;
  /** Name of every object and of the Lease. */
  name: string;
  /** `--sharding-ring`: the Deployment runs every replica on its share; the Lease Role lists and watches. */
  shardingRing?: string;
  /** One ServiceAccount and ClusterRole per controller (--use-service-account-credentials). */
  useServiceAccountCredentials: boolean;
}

export const DEFAULT_MANIFESTS_OPTIONS: ManifestsOptions = {
  controllers: DEFAULT_MANIFEST_OPTIONS.controllers,
  namespace: DEFAULT_MANIFEST_OPTIONS.namespace,
  image: DEFAULT_MANIFEST_OPTIONS.image,
  name: DEFAULT_MANIFEST_OPTIONS.name,
  useServiceAccountCredentials: false,
};

interface ManifestsFlags {
  controllers: string;
  namespace: string;
  image: string;
  shardingRing?: string;
  useServiceAccountCredentials: boolean;
  plugin?: string[];
}

export function manifestsCommand(
  definitions: ControllerDefinition[],
  out: (text: string) => void = (text) => process.stdout.write(text),
): Command {
  const d = DEFAULT_MANIFESTS_OPTIONS;
  return new Command('manifests')
    .description('print the ServiceAccount, RBAC and Deployment for the enabled controllers as YAML')
    .addOption(pluginOption())
    .option('--controllers <list>', "controllers to enable, as `run` takes them ('*', 'foo', '-foo')", '*')
    .option('--namespace <ns>', 'namespace of the ServiceAccount, Lease and Deployment', d.namespace)
    .addOption(new Option('--image <image>', 'container image of the Deployment').default(d.image))
    .option(
      '--sharding-ring <name>',
      'run every replica on its share of the keys (ts-kcm run --sharding-ring)',
    )
    .option(
      '--use-service-account-credentials',
      'one ServiceAccount and ClusterRole per controller; the Deployment runs with --use-service-account-credentials',
      false,
    )
    .allowExcessArguments(false)
    .action(async (flags: ManifestsFlags) => {
      const { manifestsYaml } = await import('./manifests-render.js');
      let yaml: string;
      try {
        yaml = manifestsYaml(definitions, {
          controllers: flags.controllers.split(','),
          namespace: flags.namespace,
          image: flags.image,
          ...(flags.shardingRing ? { shardingRing: flags.shardingRing } : {}),
          useServiceAccountCredentials: flags.useServiceAccountCredentials,
        });
      } catch (err) {
        throw new ExitError(EXIT_USAGE, `error: --controllers: ${errorMessage(err)}`);
      }
      out(yaml);
    });
}
