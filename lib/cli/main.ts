#!/usr/bin/env node
/**
 * The ts-kcm command line. `run` (the controller-manager) is the default subcommand, so
 * plain `ts-kcm --kubeconfig ...` behaves like kube-controller-manager.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { controlplaneCommand } from './controlplane.js';
import { EXIT_USAGE, ExitError } from './exit.js';
import { runCommand } from './run.js';
import { versionCommand } from './version.js';

export function buildProgram(): Command {
  const program = new Command('ts-kcm')
    .description('a Kubernetes controller-manager in TypeScript')
    .addCommand(runCommand(), { isDefault: true })
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
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const first = argv[0];
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

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  // Exit explicitly: a finished command must not linger on a stray timer or socket.
  process.exit(await main(process.argv.slice(2)));
}
