import type { ControllerDefinition, ControllerSharding, ShardingDeclaration } from '../controller/types.js';
import { fnv1a64 } from './hash.js';
import type { ShardMembership, ShardState } from './membership.js';
import { PrimaryInformerShard } from './primary-shard.js';

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
  checkShardingDeclaration(def.name, decl);
  if (decl?.shardable && decl.shardField) return fieldSharding(membership, def.name, decl);
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

/**
 * A KEP-5866-selectable controller: keys sit at raw fnv1a64 of the field's value, so the ring
 * ranges a replica owns are exactly the shardRanges an apiserver would select for it. With
 * primaryCache 'owned' a key is also admitted only once the primary cache covers it.
 */
function fieldSharding(
  membership: ShardMembership,
  name: string,
  decl: Extract<ShardingDeclaration, { shardable: true }>,
): ControllerSharding {
  const shardKey = decl.shardKey ?? namespaceShardKey;
  const position = (key: string): bigint => fnv1a64(shardKey(key));
  const ringOwns = (s: ShardState, h: bigint): boolean => s.active && s.ring.ownerOfHash(h) === s.identity;
  const primary =
    decl.primaryCache === 'owned' ? new PrimaryInformerShard(membership, name, decl.shardField!) : undefined;
  const snapshot = (): ((key: string) => boolean) => {
    const s = membership.state();
    const covered = primary?.coverage() ?? (() => true);
    return (key) => {
      const h = position(key);
      return ringOwns(s, h) && covered(h);
    };
  };
  return {
    owns: (key) => snapshot()(key),
    snapshot,
    subscribe: (listener) => {
      const offRing = membership.subscribe(() => listener());
      const offCoverage = primary?.onCoverage(listener);
      return () => {
        offRing();
        offCoverage?.();
      };
    },
    ...(primary ? { primaryShard: primary } : {}),
  };
}

/** Rejects declarations whose parts do not fit together (at build time, with a ring). */
export function checkShardingDeclaration(name: string, decl: ShardingDeclaration | undefined): void {
  if (!decl?.shardable) return;
  if (decl.primaryCache === 'owned' && !decl.shardField)
    throw new Error(
      `${name}: sharding primaryCache 'owned' needs a shardField: an apiserver can select only by a hashed field`,
    );
  if (decl.shardField === 'object.metadata.uid' && !decl.shardKey)
    throw new Error(
      `${name}: sharding shardField 'object.metadata.uid' needs a shardKey returning the key's uid`,
    );
}

/** Shard by the namespace in `namespace/name` (or `prefix:namespace/name`): a namespace's keys share one owner. */
export function namespaceShardKey(key: string): string {
  const body = key.slice(key.indexOf(':') + 1);
  const slash = body.indexOf('/');
  return slash < 0 ? '' : body.slice(0, slash);
}
