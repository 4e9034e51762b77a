/**
 * runManager: build your own binary. Parses the same flags as `ts-kcm run` from `argv` and
 * runs the manager over `controllers` until SIGTERM/SIGINT (or `signal`), resolving to the
 * exit code the CLI would use (0 clean shutdown, 1 lost leadership or failure, 2 bad flags).
 */
import { CommanderError } from 'commander';
import { ExitError, EXIT_USAGE } from '../cli/exit.js';
import { runCommand, runManager as runWithOptions, runWithSignals } from '../cli/run.js';
import type { ControllerDefinition } from '../controller/types.js';

export interface RunManagerOptions {
  controllers: ControllerDefinition[];
  /** Flags as for `ts-kcm run`, without node and script. Default: process.argv.slice(2). */
  argv?: string[];
  /** Stop when this aborts, instead of on SIGTERM/SIGINT (tests, embedding). */
  signal?: AbortSignal;
}

export async function runManager(opts: RunManagerOptions): Promise<number> {
  const signal = opts.signal;
  const cmd = runCommand(opts.controllers, (options, definitions) =>
    signal ? runWithOptions(options, signal, { definitions }) : runWithSignals(options, definitions),
  );
  cmd.exitOverride().showHelpAfterError(true);
  try {
    await cmd.parseAsync(opts.argv ?? process.argv.slice(2), { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof ExitError) return err.exitCode;
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    throw err;
  }
}
