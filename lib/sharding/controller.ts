import type { ControllerDefinition, ControllerSharding } from '../controller/types.js';
import type { ShardMembership } from './membership.js';

/** The ring key a non-shardable controller hashes to: the whole controller runs on its owner. */
export function wholeControllerKey(name: string): string {
  return `controller/${name}`;
}

/** Binds a controller's declaration (how its keys hash) to this replica's ring membership. */
export function controllerSharding(
  membership: ShardMembership,
  def: Pick<ControllerDefinition, 'name' | 'sharding'>,
): ControllerSharding {
  const decl = def.sharding;
  const whole = wholeControllerKey(def.name);
  const shardKey: (key: string) => string = decl?.shardable ? (decl.shardKey ?? ((k) => k)) : () => whole;
  return {
    owns: (key) => membership.owns(shardKey(key)),
    snapshot: () => {
      const s = membership.state();
      return (key) => s.active && s.ring.owner(shardKey(key)) === s.identity;
    },
    subscribe: (listener) => membership.subscribe(() => listener()),
  };
}

/** Shard by the namespace in `namespace/name` (or `prefix:namespace/name`): a namespace's keys share one owner. */
export function namespaceShardKey(key: string): string {
  const body = key.slice(key.indexOf(':') + 1);
  const slash = body.indexOf('/');
  return slash < 0 ? '' : body.slice(0, slash);
}
