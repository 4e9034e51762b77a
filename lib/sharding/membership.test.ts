import { describe, expect, it } from '@jest/globals';
import type { KubeObject, Lease } from '../api/index.js';
import { FakeKubeClient, Resources } from '../client/index.js';
import type { KubeClient, ResourceClient } from '../client/types.js';
import { FakeClock } from '../clock/index.js';
import { newRegistry } from '../metrics/index.js';
import { RING_LABEL, ShardMembership, VIRTUAL_NODES_ANNOTATION, leaseNameFor } from './membership.js';

const NS = 'kube-system';
const RING = 'workers';
// kube-controller-manager's defaults: L = 15 s, D = 10 s, P = 2 s; so F = 3 s and the drain margin M = 2 s.
const L = 15_000;
const D = 10_000;
const P = 2_000;
const M = L - D - 0.6 * (L - D);
const KEYS = Array.from({ length: 300 }, (_, i) => `ns-${i % 7}/obj-${i}`);

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

/** A client that can be cut off from the apiserver (every call fails), per member. */
function partitionable(fake: FakeKubeClient, slowMs?: { ms: number; clock: FakeClock }, legacy = false) {
  const cut = { all: false, lists: false, renews: false };
  const client: KubeClient = {
    serverVersion: () => fake.serverVersion(),
    requestRaw: (m, p, b) => fake.requestRaw(m, p, b),
    resource<T extends KubeObject>(ref: Parameters<KubeClient['resource']>[0]): ResourceClient<T> {
      const inner = fake.resource<T>(ref);
      // A replica from before the virtual-node annotation: its Lease never carries one.
      const strip = (o: T): T => (legacy ? { ...o, metadata: { ...o.metadata, annotations: undefined } } : o);
      const gate =
        (kind: 'lists' | 'renews') =>
        async <R>(f: () => Promise<R>): Promise<R> => {
          if (cut.all || cut[kind]) throw new Error('connection refused');
          if (slowMs) await slowMs.clock.sleep(slowMs.ms);
          return f();
        };
      return {
        ref: inner.ref,
        get: (n, ns) => gate('renews')(() => inner.get(n, ns)),
        list: (o) => gate('lists')(() => inner.list(o)),
        watch: (o, s) => inner.watch(o, s),
        create: (o, w) => gate('renews')(() => inner.create(strip(o), w)),
        update: (o, w) => gate('renews')(() => inner.update(strip(o), w)),
        patch: (n, p, o) => gate('renews')(() => inner.patch(n, p, o)),
        delete: (n, o) => gate('renews')(() => inner.delete(n, o)),
      };
    },
  };
  return { client, cut };
}

interface Member {
  id: string;
  m: ShardMembership;
  cut: { all: boolean; lists: boolean; renews: boolean };
  stop: AbortController;
  done: Promise<void>;
}

function cluster() {
  const clock = new FakeClock();
  const fake = new FakeKubeClient([], { clock });
  const members: Member[] = [];
  /** key -> owner id and since when, and the time it last lost an owner. */
  const owner = new Map<string, { id: string; since: number }>();
  const lastEnd = new Map<string, { id: string; at: number }>();
  const handovers: number[] = [];
  const violations: string[] = [];
  /** Members that left gracefully: they drained before releasing, so no margin is owed. */
  const left = new Set<string>();
  const add = (id: string, opts: { slow?: number; virtualNodes?: number; legacy?: boolean } = {}): Member => {
    const { client, cut } = partitionable(
      fake,
      opts.slow ? { ms: opts.slow, clock } : undefined,
      opts.legacy,
    );
    const m = new ShardMembership({
      client,
      namespace: NS,
      ring: RING,
      identity: id,
      leaseDurationMs: L,
      renewDeadlineMs: D,
      retryPeriodMs: P,
      clock,
      registry: newRegistry(),
      ...(opts.virtualNodes ? { virtualNodes: opts.virtualNodes } : {}),
    });
    const stop = new AbortController();
    const member = { id, m, cut, stop, done: m.run(stop.signal) };
    members.push(member);
    return member;
  };
  /** Check, at the current instant, that no key has two owners, and record handovers. */
  const cache = new Map<string, { generation: number; keys: Set<string> }>();
  const ownedSet = (x: Member): Set<string> => {
    const s = x.m.state();
    const hit = cache.get(x.id);
    if (hit?.generation === s.generation) return hit.keys;
    const keys = new Set(KEYS.filter((k) => x.m.owns(k)));
    cache.set(x.id, { generation: s.generation, keys });
    return keys;
  };
  const check = (): void => {
    const now = clock.monotonicNow();
    const sets = members.map((x) => ({ id: x.id, keys: ownedSet(x) }));
    for (const k of KEYS) {
      const owners = sets.filter((x) => x.keys.has(k)).map((x) => x.id);
      if (owners.length > 1) violations.push(`${now}: ${k} owned by ${owners.join(',')}`);
      const cur = owner.get(k);
      const next = owners[0];
      if (cur && cur.id !== next) {
        owner.delete(k);
        lastEnd.set(k, { id: cur.id, at: now });
      }
      if (next && (!cur || cur.id !== next)) {
        owner.set(k, { id: next, since: now });
        const prev = lastEnd.get(k);
        if (prev && prev.id !== next && !left.has(prev.id)) {
          handovers.push(now - prev.at);
          // The old owner's in-flight work has the drain margin to finish.
          if (now - prev.at < M)
            violations.push(`${now}: ${k} handed ${prev.id}->${next} after ${now - prev.at} ms`);
        }
      }
    }
  };
  const advance = async (ms: number, step = 100): Promise<void> => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      await settle();
      check();
    }
  };
  const ownedBy = (id: string): number =>
    KEYS.filter((k) => members.find((x) => x.id === id)!.m.owns(k)).length;
  return { clock, fake, add, advance, check, violations, handovers, ownedBy, members, left };
}

describe('ShardMembership', () => {
  it('creates its labelled Lease, and owns nothing until one lease duration after joining', async () => {
    const c = cluster();
    const a = c.add('a');
    await settle();
    const lease = await c.fake.resource<Lease>(Resources.leases).get(leaseNameFor(RING, 'a'), NS);
    expect(lease.metadata.labels?.[RING_LABEL]).toBe(RING);
    expect(lease.spec?.holderIdentity).toBe('a');
    expect(lease.spec?.leaseDurationSeconds).toBe(15);
    await c.advance(L - 200);
    expect(a.m.state().active).toBe(false);
    expect(c.ownedBy('a')).toBe(0);
    await c.advance(400);
    expect(a.m.state().active).toBe(true);
    expect(c.ownedBy('a')).toBe(KEYS.length);
    expect(a.m.describe()).toBe('ring=workers members=1 [a] self=active');
    a.stop.abort();
    await a.done;
  });

  it('a joining member waits out one lease duration while the old owner hands its keys over at once', async () => {
    const c = cluster();
    const a = c.add('a');
    await c.advance(L + P);
    c.add('b');
    await c.advance(P + 200);
    // a has listed b's Lease: b's share is nobody's while b warms up.
    expect(a.m.state().ring.members).toEqual(['a', 'b']);
    expect(c.ownedBy('a')).toBeLessThan(KEYS.length * 0.7);
    expect(c.ownedBy('b')).toBe(0);
    await c.advance(L);
    expect(c.ownedBy('a') + c.ownedBy('b')).toBe(KEYS.length);
    expect(c.ownedBy('b')).toBeGreaterThan(KEYS.length * 0.3);
    expect(c.violations).toEqual([]);
    for (const m of c.members) m.stop.abort();
    await Promise.all(c.members.map((m) => m.done));
  });

  it('a partitioned member stops its keys at the renew deadline; the others take them after the lease, within L + P', async () => {
    const c = cluster();
    const a = c.add('a');
    const b = c.add('b');
    await c.advance(L + 2 * P);
    expect(c.ownedBy('a') + c.ownedBy('b')).toBe(KEYS.length);
    const cutAt = c.clock.monotonicNow();
    a.cut.all = true;
    await c.advance(D + 100);
    expect(c.ownedBy('a')).toBe(0); // a gave up everything by its renew deadline (in fact at list freshness)
    expect(c.ownedBy('b')).toBeLessThan(KEYS.length);
    while (c.ownedBy('b') < KEYS.length) await c.advance(100);
    const takeover = c.clock.monotonicNow() - cutAt;
    expect(takeover).toBeLessThanOrEqual(L + P);
    expect(c.violations).toEqual([]);
    // Healed, a starts a new stint: back in b's view at once, owning keys only after a warm-up.
    a.cut.all = false;
    await c.advance(P + 200);
    expect(b.m.state().ring.members).toEqual(['a', 'b']);
    expect(c.ownedBy('a')).toBe(0);
    await c.advance(L);
    expect(c.ownedBy('a')).toBeGreaterThan(0);
    expect(c.violations).toEqual([]);
    for (const m of c.members) m.stop.abort();
    await Promise.all(c.members.map((m) => m.done));
  });

  it('a member whose renewals fail but whose lists succeed still stops before the others drop it', async () => {
    const c = cluster();
    const a = c.add('a');
    c.add('b');
    await c.advance(L + 2 * P);
    a.cut.renews = true;
    await c.advance(L + 2 * P);
    expect(c.ownedBy('a')).toBe(0);
    expect(c.ownedBy('b')).toBe(KEYS.length);
    expect(c.violations).toEqual([]);
    for (const m of c.members) m.stop.abort();
    await Promise.all(c.members.map((m) => m.done));
  });

  it('a member that cannot list stops its keys after the list freshness and resumes without a warm-up', async () => {
    const c = cluster();
    const a = c.add('a');
    c.add('b');
    await c.advance(L + 2 * P);
    const before = c.ownedBy('a');
    a.cut.lists = true;
    await c.advance(2 * P);
    expect(c.ownedBy('a')).toBe(0);
    a.cut.lists = false;
    await c.advance(P + 200);
    expect(c.ownedBy('a')).toBe(before);
    expect(c.violations).toEqual([]);
    for (const m of c.members) m.stop.abort();
    await Promise.all(c.members.map((m) => m.done));
  });

  it('leaving releases the Lease: the others take the keys at their next list', async () => {
    const c = cluster();
    const a = c.add('a');
    c.add('b');
    await c.advance(L + 2 * P);
    c.left.add('a');
    a.stop.abort();
    await a.done;
    expect(c.ownedBy('a')).toBe(0);
    const lease = await c.fake.resource<Lease>(Resources.leases).get(leaseNameFor(RING, 'a'), NS);
    expect(lease.spec?.holderIdentity).toBe('');
    await c.advance(P + 100);
    expect(c.ownedBy('b')).toBe(KEYS.length);
    expect(c.violations).toEqual([]);
    for (const m of c.members) m.stop.abort();
    await Promise.all(c.members.map((m) => m.done));
  });

  it('a Lease deleted under a live member does not hand its keys out early', async () => {
    const c = cluster();
    c.add('a');
    c.add('b');
    await c.advance(L + 2 * P);
    const aKeys = c.ownedBy('a');
    await c.fake.resource<Lease>(Resources.leases).delete(leaseNameFor(RING, 'a'), { namespace: NS });
    await c.advance(P);
    // a recreated its Lease: a new stint. It stopped (its renew failed: NotFound, then create
    // succeeded); b keeps a in view the whole time and never grabs a's keys.
    expect(c.ownedBy('a') === aKeys || c.ownedBy('a') === 0).toBe(true);
    await c.advance(L + P);
    expect(c.ownedBy('a') + c.ownedBy('b')).toBe(KEYS.length);
    expect(c.violations).toEqual([]);
    for (const m of c.members) m.stop.abort();
    await Promise.all(c.members.map((m) => m.done));
  });

  it('with slow requests (each takes a quarter of a retry period) no key ever has two owners through join, partition and leave', async () => {
    const c = cluster();
    const a = c.add('a', { slow: P / 2 });
    const b = c.add('b', { slow: P / 2 });
    await c.advance(L + 3 * P);
    const d = c.add('d', { slow: P / 2 });
    await c.advance(P);
    b.cut.all = true;
    await c.advance(L + 2 * P);
    b.cut.all = false;
    await c.advance(L + 3 * P);
    expect(c.ownedBy('a') + c.ownedBy('b') + c.ownedBy('d')).toBe(KEYS.length);
    c.left.add('d');
    d.stop.abort();
    await c.advance(2 * P);
    await d.done;
    expect(c.ownedBy('a') + c.ownedBy('b')).toBe(KEYS.length);
    expect(c.violations).toEqual([]);
    expect(c.handovers.length).toBeGreaterThan(0);
    for (const m of [a, b]) m.stop.abort();
    await c.advance(3 * P);
    await Promise.all(c.members.map((m) => m.done));
  }, 30_000);

  it('publishes its virtual-node count, and members with different counts agree through a rolling upgrade', async () => {
    const c = cluster();
    // a: a replica from before the annotation (128 points, publishes nothing); b: 512; then c: 1024.
    const a = c.add('a', { virtualNodes: 128, legacy: true });
    const b = c.add('b');
    await c.advance(L + 2 * P);
    const leases = c.fake.resource<Lease>(Resources.leases);
    expect((await leases.get(leaseNameFor(RING, 'b'), NS)).metadata.annotations).toEqual({
      [VIRTUAL_NODES_ANNOTATION]: '512',
    });
    expect((await leases.get(leaseNameFor(RING, 'a'), NS)).metadata.annotations).toBeUndefined();
    expect(b.m.state().ring.virtualNodesOf('a')).toBe(128);
    expect(a.m.state().ring.virtualNodesOf('b')).toBe(512);
    expect(c.ownedBy('a') + c.ownedBy('b')).toBe(KEYS.length);
    const cc = c.add('c', { virtualNodes: 1024 });
    await c.advance(L + 2 * P);
    expect(b.m.state().ring.virtualNodesOf('c')).toBe(1024);
    expect(c.ownedBy('a') + c.ownedBy('b') + c.ownedBy('c')).toBe(KEYS.length);
    c.left.add('a');
    a.stop.abort();
    await c.advance(2 * P);
    await a.done;
    expect(c.ownedBy('b') + c.ownedBy('c')).toBe(KEYS.length);
    expect(c.violations).toEqual([]);
    for (const m of [b, cc]) m.stop.abort();
    await c.advance(3 * P);
    await Promise.all(c.members.map((m) => m.done));
  }, 30_000);

  it('rejects timings that leave no drain margin', () => {
    const base = {
      client: new FakeKubeClient(),
      namespace: NS,
      ring: RING,
      identity: 'x',
      leaseDurationMs: L,
      renewDeadlineMs: D,
      retryPeriodMs: P,
    };
    expect(() => new ShardMembership({ ...base, renewDeadlineMs: 14_000 })).toThrow(/list freshness/);
    expect(() => new ShardMembership({ ...base, ring: 'Not a label!' })).toThrow(/label value/);
    expect(() => new ShardMembership({ ...base, virtualNodes: 0 })).toThrow(/virtualNodes/);
    expect(() => new ShardMembership({ ...base, virtualNodes: 5000 })).toThrow(/virtualNodes/);
    expect(() => new ShardMembership(base)).not.toThrow();
  });
});
