import { describe, expect, it } from '@jest/globals';
import type { ResourceClaim } from '../../lib/api/index.js';
import { FakeClock } from '../../lib/clock/index.js';
import { newIndexer } from '../../lib/informer/index.js';
import { CLAIMS_BY_POD_OWNER_INDEX, claimsByPodOwner } from './controller.js';
import { DEFAULT_MUTATION_TTL_MS, MUTATION_CACHE_SIZE, MutationCache } from './mutation-cache.js';

function claim(name: string, rv: string, ownerUid?: string, uid = `uid-${name}`): ResourceClaim {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaim',
    metadata: {
      name,
      namespace: 'ns',
      uid,
      resourceVersion: rv,
      ...(ownerUid
        ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'p', uid: ownerUid, controller: true }] }
        : {}),
    },
  };
}

function setup() {
  const clock = new FakeClock();
  const indexer = newIndexer<ResourceClaim>();
  const indexes = { [CLAIMS_BY_POD_OWNER_INDEX]: claimsByPodOwner };
  indexer.addIndexers(indexes);
  const cache = new MutationCache(indexer, indexes, clock);
  return { clock, indexer, cache };
}

describe('MutationCache', () => {
  it('returns a just-created object by key and by index before the informer has it', () => {
    const { cache } = setup();
    cache.mutation(claim('c', '10', 'pod-uid'));
    expect(cache.get('ns/c')?.metadata.resourceVersion).toBe('10');
    expect(cache.byIndex(CLAIMS_BY_POD_OWNER_INDEX, 'pod-uid').map((c) => c.metadata.name)).toEqual(['c']);
    expect(cache.byIndex(CLAIMS_BY_POD_OWNER_INDEX, 'other')).toEqual([]);
  });

  it('prefers its copy while the informer holds an older one', () => {
    const { cache, indexer } = setup();
    indexer.add(claim('c', '5'));
    cache.mutation(claim('c', '10', 'pod-uid'));
    expect(cache.get('ns/c')?.metadata.resourceVersion).toBe('10');
    // The informer's old copy is not in the owner index, ours is.
    expect(
      cache.byIndex(CLAIMS_BY_POD_OWNER_INDEX, 'pod-uid').map((c) => c.metadata.resourceVersion),
    ).toEqual(['10']);
  });

  it.each([
    ['the same', '10'],
    ['a newer', '11'],
  ])('drops its copy once the informer has %s version', (_why, rv) => {
    const { cache, indexer } = setup();
    cache.mutation(claim('c', '10', 'pod-uid'));
    indexer.add(claim('c', rv, 'pod-uid'));
    expect(cache.get('ns/c')?.metadata.resourceVersion).toBe(rv);
    expect(cache.size()).toBe(0);
    expect(
      cache.byIndex(CLAIMS_BY_POD_OWNER_INDEX, 'pod-uid').map((c) => c.metadata.resourceVersion),
    ).toEqual([rv]);
  });

  it('forgets entries after the TTL (one hour)', () => {
    const { cache, clock } = setup();
    cache.mutation(claim('c', '10', 'pod-uid'));
    clock.advance(DEFAULT_MUTATION_TTL_MS);
    expect(cache.get('ns/c')).toBeDefined();
    clock.advance(1);
    expect(cache.get('ns/c')).toBeUndefined();
    expect(cache.byIndex(CLAIMS_BY_POD_OWNER_INDEX, 'pod-uid')).toEqual([]);
    expect(cache.size()).toBe(0);
  });

  it('holds at most 100 objects, evicting the least recently used (as client-go)', () => {
    const { cache } = setup();
    expect(MUTATION_CACHE_SIZE).toBe(100);
    for (let i = 0; i < MUTATION_CACHE_SIZE; i++) cache.mutation(claim(`c${i}`, '10', 'pod-uid'));
    expect(cache.get('ns/c0')).toBeDefined(); // c0 is now the most recently used, c1 the least
    cache.mutation(claim('one-more', '10', 'pod-uid'));
    expect(cache.size()).toBe(MUTATION_CACHE_SIZE);
    expect(cache.get('ns/c1')).toBeUndefined();
    expect(cache.get('ns/c0')).toBeDefined();
    expect(cache.get('ns/one-more')).toBeDefined();
    expect(cache.byIndex(CLAIMS_BY_POD_OWNER_INDEX, 'pod-uid')).toHaveLength(MUTATION_CACHE_SIZE);
  });

  it('does not answer with an object the informer added and then saw deleted', () => {
    const { cache, indexer } = setup();
    const created = claim('c', '10', 'pod-uid');
    cache.mutation(created);
    // The watch delivers the add and then the delete before anyone looks the claim up.
    indexer.add(created);
    indexer.delete(created);
    cache.deleted(created);
    expect(cache.get('ns/c')).toBeUndefined();
    expect(cache.byIndex(CLAIMS_BY_POD_OWNER_INDEX, 'pod-uid')).toEqual([]);
    expect(cache.size()).toBe(0);
  });

  it('keeps its copy when the deletion was of an older incarnation under the same name', () => {
    const { cache } = setup();
    cache.mutation(claim('c', '20', 'pod-uid', 'new-uid'));
    cache.deleted(claim('c', '10', 'pod-uid', 'old-uid'));
    expect(cache.get('ns/c')?.metadata.uid).toBe('new-uid');
  });

  it('defers to the informer when versions are not integers', () => {
    const { cache, indexer } = setup();
    cache.mutation(claim('c', 'abc'));
    indexer.add(claim('c', '1'));
    expect(cache.get('ns/c')?.metadata.resourceVersion).toBe('1');
  });

  it('rejects unknown index names', () => {
    const { cache } = setup();
    expect(() => cache.byIndex('nope', 'x')).toThrow('unknown index nope');
  });
});
