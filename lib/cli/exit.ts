/** Exit codes of the ts-kcm CLI. */

/** Bad flags or an unknown subcommand, as getopt-style tools report usage errors. */
export const EXIT_USAGE = 2;
/** `controlplane status` when some component is not running (systemctl's "not running"). */
export const EXIT_NOT_RUNNING = 3;

/** Thrown by an action to end the CLI with a specific exit code after its own message. */
export class ExitError extends Error {
  constructor(
    readonly exitCode: number,
    message = '',
  ) {
    super(message);
    this.name = 'ExitError';
  }
}
