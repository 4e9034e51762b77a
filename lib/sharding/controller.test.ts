import { describe, expect, it } from '@jest/globals';
import { FakeKubeClient } from '../client/index.js';
import { FakeClock } from '../clock/index.js';
import type { ControllerDefinition } from '../controller/types.js';
import { defineController } from '../sdk/define.js';
import { resourceRef } from '../sdk/resource.js';
import { controllerSharding, namespaceShardKey } from './controller.js';
import { ShardMembership } from './membership.js';

const widgets = resourceRef({
  group: 'example.com',
  version: 'v1',
  resource: 'widgets',
  kind: 'Widget',
  namespaced: true,
});
const keys = Array.from({ length: 200 }, (_, i) => `ns-${i % 10}/w-${i}`);

/** Two members of one ring, both active. */
async function twoActive() {
  const clock = new FakeClock();
  const fake = new FakeKubeClient([], { clock });
  const make = (identity: string) =>
    new ShardMembership({
      client: fake,
      namespace: 'kube-system',
      ring: 'r',
      identity,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      clock,
    });
  const a = make('a');
  const b = make('b');
  for (let t = 0; t <= 16_000; t += 2_000) {
    await a.tick();
    await b.tick();
    clock.advance(2_000);
  }
  await a.tick();
  await b.tick();
  expect([a.state().active, b.state().active]).toEqual([true, true]);
  return [a, b] as const;
}

function def(sharding: ControllerDefinition['sharding']): Pick<ControllerDefinition, 'name' | 'sharding'> {
  return { name: 'c', sharding };
}

describe('controllerSharding', () => {
  it('splits a shardable controller’s keys between the members, each key to exactly one', async () => {
    const [a, b] = await twoActive();
    const sa = controllerSharding(a, def({ shardable: true }));
    const sb = controllerSharding(b, def({ shardable: true }));
    for (const k of keys) expect(Number(sa.owns(k)) + Number(sb.owns(k))).toBe(1);
    expect(keys.filter((k) => sa.owns(k)).length).toBeGreaterThan(40);
    expect(keys.filter((k) => sb.owns(k)).length).toBeGreaterThan(40);
  });

  it('runs an undeclared or unshardable controller whole on one member', async () => {
    const [a, b] = await twoActive();
    for (const d of [def(undefined), def({ shardable: false, reason: 'global state' })]) {
      const sa = controllerSharding(a, d);
      const sb = controllerSharding(b, d);
      const owners = new Set(keys.map((k) => (sa.owns(k) ? 'a' : sb.owns(k) ? 'b' : '-')));
      expect(owners.size).toBe(1);
      expect(owners.has('-')).toBe(false);
    }
  });

  it('keeps a namespace’s keys together when sharding by namespace, prefixed keys included', async () => {
    const [a] = await twoActive();
    const s = controllerSharding(a, def({ shardable: true, shardKey: namespaceShardKey }));
    for (let ns = 0; ns < 10; ns++) {
      const verdicts = new Set([`pod:ns-${ns}/p`, `claim:ns-${ns}/c`, `ns-${ns}/x`].map((k) => s.owns(k)));
      expect(verdicts.size).toBe(1);
    }
    expect(namespaceShardKey('pod:team-a/p1')).toBe('team-a');
    expect(namespaceShardKey('claim:team-a/c1')).toBe('team-a');
    expect(namespaceShardKey('cluster-scoped')).toBe('');
  });

  it('a snapshot keeps its verdicts after the ring changes', async () => {
    const [a, b] = await twoActive();
    const sa = controllerSharding(a, def({ shardable: true }));
    const before = sa.snapshot();
    const owned = keys.filter(before);
    const stop = new AbortController();
    stop.abort();
    await b.run(stop.signal); // b leaves: a owns everything at its next list
    await a.tick();
    expect(keys.every((k) => sa.owns(k))).toBe(true);
    expect(keys.filter(before)).toEqual(owned);
  });
});

describe('defineController sharding declarations', () => {
  const base = { for: widgets, reconcile: async () => undefined };
  it('shards by key by default, by namespace, by a function, or not at all', () => {
    expect(defineController({ ...base, name: 'd1' }).sharding).toMatchObject({ shardable: true });
    expect(defineController({ ...base, name: 'd1' }).sharding).not.toHaveProperty('shardKey');
    const byNs = defineController({ ...base, name: 'd2', sharding: 'namespace' }).sharding;
    expect(byNs?.shardable && byNs.shardKey?.('a/b')).toBe('a');
    const custom = defineController({ ...base, name: 'd3', sharding: (k) => k.toUpperCase() }).sharding;
    expect(custom?.shardable && custom.shardKey?.('a/b')).toBe('A/B');
    expect(defineController({ ...base, name: 'd4', sharding: false }).sharding).toMatchObject({
      shardable: false,
    });
  });
});
