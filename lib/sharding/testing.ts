/**
 * A ring stand-in for unit tests: this replica owns exactly the keys in `mine`, and `move`
 * changes that set and notifies the queues, as a new ring would.
 */
import type { ControllerSharding } from '../controller/types.js';

export function fakeSharding(mine: Iterable<string>): {
  sharding: ControllerSharding;
  move(keys: string[]): void;
} {
  const owned = new Set(mine);
  const listeners = new Set<() => void>();
  const sharding: ControllerSharding = {
    owns: (k) => owned.has(k),
    snapshot: () => {
      const frozen = new Set(owned);
      return (k) => frozen.has(k);
    },
    subscribe: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  const move = (keys: string[]): void => {
    owned.clear();
    keys.forEach((k) => owned.add(k));
    listeners.forEach((l) => l());
  };
  return { sharding, move };
}

/** A promise and its resolver: a reactor holds a request on it. */
export function deferred(): { promise: Promise<undefined>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<undefined>((r) => (resolve = () => r(undefined)));
  return { promise, resolve };
}
