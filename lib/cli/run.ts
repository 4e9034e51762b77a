import { Command } from 'commander';

// Placeholder: the manager's `run` subcommand (lib/manager) replaces this.
export function runCommand(): Command {
  return new Command('run').description('run the controller-manager').action(() => {
    throw new Error('ts-kcm run is not implemented yet');
  });
}
