/**
 * The KEP-5866 share of a controller's primary informer (ShardingDeclaration.primaryCache
 * 'owned'). It hands the informer the selector of this replica's ring ranges, and learns back
 * what the informer's cache covers, so the controller admits a key only once its object can be
 * in the cache:
 *
 * - current(): the ranges this replica has on its ring, from the moment it is a member (so the
 *   share is listed during the warm-up, before it owns anything). When it drops out of its own
 *   ring (a stint ended), the last share is kept: nothing is listed again for an outage. Before
 *   the first share, the whole hash space: the first list then also tells whether the apiserver
 *   serves KEP-5866 at all.
 * - listed(applied): what the informer stored. A filter the server applied: the cache holds
 *   exactly those ranges. undefined: the server ignored the selector (v1.35), the cache holds
 *   everything, and ownership is the ring's alone, as for a controller without the option.
 *
 * Handover: a replica's ranges grow when a member leaves. Its queue admits the gained keys only
 * after the relist with the new selector has been stored, so the new owner starts them later
 * than the ring alone would allow, never earlier; the old owner's fence is unchanged.
 */
import type { ShardField } from '../client/types.js';
import type { InformerShard, ShardFilter } from '../informer/types.js';
import type { ShardMembership } from './membership.js';
import { RangeShardFilter, toShardRanges, WHOLE_HASH_SPACE } from './selector.js';

export class PrimaryInformerShard implements InformerShard {
  readonly name: string;
  private filter: RangeShardFilter;
  private filterGeneration = -1;
  /** What the cache holds: the filter the server applied, or undefined (everything). */
  private covered: RangeShardFilter | undefined;
  private readonly coverageListeners = new Set<() => void>();

  constructor(
    private readonly membership: ShardMembership,
    controller: string,
    readonly field: ShardField,
  ) {
    this.name = `sharding/${controller}`;
    this.filter = new RangeShardFilter(field, WHOLE_HASH_SPACE);
  }

  current(): ShardFilter {
    const s = this.membership.state();
    if (s.generation === this.filterGeneration) return this.filter;
    this.filterGeneration = s.generation;
    if (s.ring.virtualNodesOf(s.identity) === undefined) return this.filter;
    const next = new RangeShardFilter(this.field, toShardRanges(s.ring.rangesOf(s.identity)));
    if (next.selector !== this.filter.selector) this.filter = next;
    return this.filter;
  }

  subscribe(listener: () => void): () => void {
    return this.membership.subscribe(() => listener());
  }

  listed(applied: ShardFilter | undefined): void {
    if (applied !== undefined && !(applied instanceof RangeShardFilter))
      throw new Error(`${this.name}: listed() with a filter this shard did not hand out`);
    const before = this.covered;
    this.covered = applied;
    if (before?.selector === applied?.selector) return;
    for (const l of this.coverageListeners) l();
  }

  /** A frozen view of the coverage: does the cache hold the objects at hash `h`? */
  coverage(): (h: bigint) => boolean {
    const c = this.covered;
    return c ? (h) => c.coversHash(h) : () => true;
  }

  /** Called when the coverage changed; returns an unsubscribe function. */
  onCoverage(listener: () => void): () => void {
    this.coverageListeners.add(listener);
    return () => this.coverageListeners.delete(listener);
  }
}
