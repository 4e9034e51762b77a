import { describe, expect, it } from '@jest/globals';
import type { KubeList, KubeObject } from '../api/index.js';
import { FakeKubeClient, Resources } from '../client/index.js';
import { fnv1a64, hex64, ringHash } from './hash.js';
import { HashRing } from './ring.js';
import {
  inShardRanges,
  inSortedShardRanges,
  listShard,
  RangeShardFilter,
  shardSelector,
  toShardRanges,
  WHOLE_HASH_SPACE,
} from './selector.js';

const pods: KubeObject[] = Array.from({ length: 200 }, (_, i) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: `p${i}`,
    namespace: 'default',
    uid: hex64(ringHash(`uid-${i}`)).slice(2),
  },
}));

describe('KEP-5866 shard selector', () => {
  it('spells ranges as the KEP does, splitting a ring range that wraps', () => {
    expect(shardSelector('object.metadata.uid', [{ start: 0n, end: 1n << 63n }])).toBe(
      "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')",
    );
    const wrapped = toShardRanges([{ start: 0xf000000000000000n, end: 0x0fffffffffffffffn }]);
    expect(shardSelector('object.metadata.namespace', wrapped)).toBe(
      "shardRange(object.metadata.namespace, '0x0000000000000000', '0x1000000000000000') || " +
        "shardRange(object.metadata.namespace, '0xf000000000000001', '0x10000000000000000')",
    );
  });

  it('merges touching ranges: a lone member’s ring is the whole hash space, one range', () => {
    const ring = new HashRing(['a'], 8);
    expect(toShardRanges(ring.rangesOf('a'))).toEqual([...WHOLE_HASH_SPACE]);
  });

  it('RangeShardFilter admits exactly what the ring gives its member, by raw FNV-1a of the namespace', () => {
    const ring = new HashRing(['a', 'b', 'c'], 64);
    const filters = ring.members.map(
      (m) => [m, new RangeShardFilter('object.metadata.namespace', toShardRanges(ring.rangesOf(m)))] as const,
    );
    for (let i = 0; i < 300; i++) {
      const obj = { metadata: { namespace: `ns-${i}`, name: 'x' } };
      const owner = ring.ownerOfHash(fnv1a64(`ns-${i}`));
      for (const [m, f] of filters) expect([m, f.admits(obj)]).toEqual([m, m === owner]);
    }
    expect(inSortedShardRanges(5n, [{ start: 0n, end: 5n }])).toBe(false);
    expect(
      inSortedShardRanges(5n, [
        { start: 0n, end: 5n },
        { start: 5n, end: 6n },
      ]),
    ).toBe(true);
  });

  it('ring ranges of all members cover the hash space exactly once', () => {
    const ring = new HashRing(['a', 'b', 'c'], 8);
    const all = ring.members.flatMap((m) => toShardRanges(ring.rangesOf(m)));
    for (const pod of pods)
      expect(all.filter((r) => inShardRanges(pod, 'object.metadata.uid', [r]))).toHaveLength(1);
  });

  it('uses the server’s filtering when the list echoes the selector', async () => {
    const ranges = [{ start: 0n, end: 1n << 63n }];
    const selector = shardSelector('object.metadata.uid', ranges);
    const fake = new FakeKubeClient(structuredClone(pods));
    const served = pods.filter((p) => fnv1a64(p.metadata.uid!) < 1n << 63n);
    fake.prependReactor('list', 'pods', (a) => {
      expect((a.options as { shardSelector?: string }).shardSelector).toBe(selector);
      return {
        metadata: { resourceVersion: '9', shardInfo: { selector } },
        items: served,
      } satisfies KubeList;
    });
    const { list, serverSide } = await listShard(
      fake.resource(Resources.pods),
      {},
      'object.metadata.uid',
      ranges,
    );
    expect(serverSide).toBe(true);
    expect(list.items).toBe(served);
  });

  it('filters on the client when the server ignores the selector (v1.35), to the same share', async () => {
    const ranges = [{ start: 0n, end: 1n << 63n }];
    const fake = new FakeKubeClient(structuredClone(pods));
    const { list, serverSide } = await listShard(
      fake.resource(Resources.pods),
      {},
      'object.metadata.uid',
      ranges,
    );
    expect(serverSide).toBe(false);
    const expected = pods.filter((p) => fnv1a64(p.metadata.uid!) < 1n << 63n).map((p) => p.metadata.name);
    expect(list.items.map((p) => p.metadata.name).sort()).toEqual(expected.sort());
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(pods.length);
  });
});
