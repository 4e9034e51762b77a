/**
 * The ts-kcm command line. `run` (the controller-manager) is the default subcommand, so
 * plain `ts-kcm --kubeconfig ...` behaves like kube-controller-manager. The controllers are
 * passed in, so lib/ never depends on controllers/: the binary's entry point is
 * controllers/main.ts, which hands over the built-in ones. A team building its own binary
 * does the same with its own list.
 */
import { Command, CommanderError } from 'commander';
import type { ControllerDefinition } from '../controller/index.js';
import { errorMessage } from '../log/index.js';
import { controlplaneCommand } from './controlplane.js';
import { EXIT_USAGE, ExitError } from './exit.js';
import { genCommand } from './gen.js';
import { manifestsCommand } from './manifests.js';
import { newCommand } from './new.js';
import { pluginSpecsFromArgv, withPlugins } from './plugins.js';
import { runCommand } from './run.js';
import { versionCommand } from './version.js';

/** Subcommands that take --plugin; `run` is also the default when argv starts with a flag. */
const PLUGIN_COMMANDS = new Set(['run', 'manifests']);

export function buildProgram(controllers: ControllerDefinition[]): Command {
  const program = new Command('ts-kcm')
    .description('a Kubernetes controller-manager in TypeScript')
    .addCommand(runCommand(controllers), { isDefault: true })
    .addCommand(manifestsCommand(controllers))
    .addCommand(genCommand())
    .addCommand(newCommand())
    .addCommand(controlplaneCommand())
    .addCommand(versionCommand());
  // addCommand() does not copy settings to subcommands, so apply them to the whole tree.
  const configure = (cmd: Command): void => {
    cmd.exitOverride().showHelpAfterError(true);
    cmd.commands.forEach(configure);
  };
  configure(program);
  return program;
}

/** Runs the CLI on `argv` (arguments only, without node and script) and resolves to the exit code. */
export async function main(argv: string[], controllers: ControllerDefinition[]): Promise<number> {
  const first = argv[0];
  // Phase one: plugins bring controllers, and with them flags commander must know before it parses.
  const takesPlugins = first === undefined || first.startsWith('-') || PLUGIN_COMMANDS.has(first);
  const specs = takesPlugins ? pluginSpecsFromArgv(argv) : [];
  if (specs.length > 0) {
    try {
      controllers = await withPlugins(controllers, specs);
    } catch (err) {
      if (!(err instanceof ExitError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return err.exitCode;
    }
  }
  let program: Command;
  try {
    program = buildProgram(controllers);
  } catch (err) {
    // A plugin's flag that collides with one of ours (commander refuses the duplicate).
    if (specs.length === 0) throw err;
    process.stderr.write(`error: --plugin ${specs.join(', ')}: ${errorMessage(err)}\n`);
    return EXIT_USAGE;
  }
  // A default subcommand would swallow a mistyped one as an argument; name it instead.
  if (
    first !== undefined &&
    !first.startsWith('-') &&
    first !== 'help' &&
    !program.commands.some((c) => c.name() === first || c.aliases().includes(first))
  ) {
    process.stderr.write(`error: unknown command '${first}'\n\n${program.helpInformation()}`);
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    // Commander has already printed its message (and the usage) to stderr.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    if (err instanceof ExitError) {
      if (err.message) process.stderr.write(`${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
