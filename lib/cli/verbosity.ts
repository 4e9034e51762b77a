import { InvalidArgumentError } from 'commander';

/**
 * The value of -v/--v, a whole number ≥ 0. klog's own spelling `-v=4` reaches commander as
 * the short option with the value `=4` (only a long option splits on '='), so a leading '='
 * is dropped, as pflag does for a shorthand.
 */
export function verbosity(value: string): number {
  const v = value.startsWith('=') ? value.slice(1) : value;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('must be a whole number of 0 or more');
  return n;
}
