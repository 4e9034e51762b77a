import { describe, expect, it } from '@jest/globals';
import type { Lease } from '../api/index.js';
import { ApiError, FakeKubeClient, Resources } from '../client/index.js';
import { FakeClock } from '../clock/index.js';
import { newRegistry } from '../metrics/index.js';
import { formatMicroTime } from '../api/index.js';
import { LeaderElector, newIdentity } from './index.js';

const NS = 'kube-system';
const NAME = 'ts-kcm';

/** Let the fake client's promises and our loops run; real macrotask turns, no time passes. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

async function advance(clock: FakeClock, ms: number, step = 500): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await settle();
  }
}

function lease(holder: string, renewMs: number, transitions = 0): Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: NAME, namespace: NS },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      acquireTime: formatMicroTime(renewMs),
      renewTime: formatMicroTime(renewMs),
      leaseTransitions: transitions,
    },
  };
}

function setup(seed: Lease[] = [], identity = 'me') {
  const clock = new FakeClock();
  const fake = new FakeKubeClient(seed, { clock });
  const registry = newRegistry();
  const events: string[] = [];
  let leading: AbortSignal | undefined;
  const elector = new LeaderElector({
    client: fake,
    namespace: NS,
    name: NAME,
    identity,
    clock,
    registry,
    jitterFactor: 0,
    callbacks: {
      onStartedLeading: (signal) => {
        leading = signal;
        events.push('started');
      },
      onStoppedLeading: () => events.push('stopped'),
      onNewLeader: (id) => events.push(`leader:${id}`),
    },
  });
  const stop = new AbortController();
  const done = elector.run(stop.signal);
  return { clock, fake, registry, events, elector, stop, done, leadingSignal: () => leading };
}

async function stored(fake: FakeKubeClient): Promise<Lease> {
  return fake.resource<Lease>(Resources.leases).get(NAME, NS);
}

async function gauge(registry: ReturnType<typeof newRegistry>): Promise<string> {
  return (await registry.getSingleMetricAsString('leader_election_master_status')).split('\n').pop()!;
}

describe('LeaderElector', () => {
  it('creates the Lease when none exists and starts leading', async () => {
    const t = setup();
    await settle();
    expect(t.fake.actions.map((a) => [a.verb, a.resource, a.namespace, a.name])).toEqual([
      ['get', 'leases', NS, NAME],
      ['create', 'leases', NS, NAME],
    ]);
    expect(t.fake.actions[1]!.body).toEqual({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: NAME, namespace: NS },
      spec: {
        holderIdentity: 'me',
        leaseDurationSeconds: 15,
        acquireTime: '2026-01-01T00:00:00.000000Z',
        renewTime: '2026-01-01T00:00:00.000000Z',
        leaseTransitions: 0,
      },
    });
    expect(t.events).toEqual(['leader:me', 'started']);
    expect(t.elector.isLeader()).toBe(true);
    expect(await gauge(t.registry)).toBe('leader_election_master_status{name="ts-kcm"} 1');
    t.stop.abort();
    await t.done;
  });

  it('renews every retry period from its cached copy (no GET) and keeps acquireTime', async () => {
    const t = setup();
    await settle();
    t.fake.clearActions();
    await advance(t.clock, 2_000);
    await advance(t.clock, 2_000);
    expect(t.fake.actions.map((a) => a.verb)).toEqual(['update', 'update']);
    const l = await stored(t.fake);
    expect(l.spec?.renewTime).toBe('2026-01-01T00:00:04.000000Z');
    expect(l.spec?.acquireTime).toBe('2026-01-01T00:00:00.000000Z');
    expect(l.spec?.leaseTransitions).toBe(0);
    t.stop.abort();
    await t.done;
  });

  it('waits for a held lease to stay unchanged for leaseDuration on its own clock, then takes it', async () => {
    const start = Date.parse('2026-01-01T00:00:00Z');
    // The holder's renewTime is far in the past: a skewed clock must not make us grab it at once.
    const t = setup([lease('other', start - 3_600_000, 4)]);
    await settle();
    expect(t.elector.isLeader()).toBe(false);
    expect(t.events).toEqual(['leader:other']);
    // The holder renews at 10 s: our expiry clock restarts.
    await advance(t.clock, 10_000);
    const leases = t.fake.resource<Lease>(Resources.leases);
    const cur = await stored(t.fake);
    await leases.update({ ...cur, spec: { ...cur.spec, renewTime: formatMicroTime(t.clock.now()) } });
    await advance(t.clock, 14_000);
    t.fake.clearActions();
    await advance(t.clock, 2_999, 2_999);
    expect(t.elector.isLeader()).toBe(false);
    // Only the grid polls at 26 s read the lease meanwhile; no attempt to write it.
    expect(t.fake.actions.map((a) => a.verb)).toEqual(['get']);
    // Observed at 12 s (the next poll after the renew); the attempt is timed for 12 + 15 = 27 s,
    // not left to the poll at 28 s.
    await advance(t.clock, 1, 1);
    expect(t.elector.isLeader()).toBe(true);
    expect(t.fake.actions.map((a) => a.verb)).toEqual(['get', 'get', 'update']);
    expect(t.events).toEqual(['leader:other', 'leader:me', 'started']);
    const l = await stored(t.fake);
    expect(l.spec).toEqual({
      holderIdentity: 'me',
      leaseDurationSeconds: 15,
      acquireTime: '2026-01-01T00:00:27.000000Z',
      renewTime: '2026-01-01T00:00:27.000000Z',
      leaseTransitions: 5,
    });
    t.stop.abort();
    await t.done;
  });

  it('a standby whose wall clock steps forward an hour does not take a live lease', async () => {
    const start = Date.parse('2026-01-01T00:00:00Z');
    const t = setup([lease('other', start, 2)]);
    await settle();
    expect(t.elector.isLeader()).toBe(false);
    const leases = t.fake.resource<Lease>(Resources.leases);
    // The holder renews every 4 s (well within its 15 s lease); our wall clock jumps an hour
    // (NTP step, VM resume) right after a poll, so the next poll sees an unchanged record.
    for (let i = 0; i < 10; i++) {
      await advance(t.clock, 1_000, 1_000);
      if (i === 3) t.clock.stepWall(3_600_000);
      await advance(t.clock, 1, 1);
      if (i % 2 === 0) {
        const cur = await stored(t.fake);
        await leases.update({ ...cur, spec: { ...cur.spec, renewTime: formatMicroTime(t.clock.now()) } });
      }
      await advance(t.clock, 999, 999);
    }
    expect(t.elector.isLeader()).toBe(false);
    expect((await stored(t.fake)).spec?.holderIdentity).toBe('other');
    expect(t.fake.writeActions().filter((a) => a.verb === 'update' && a.resource === 'leases')).toHaveLength(
      5, // only the holder's renews
    );
    t.stop.abort();
    await t.done;
  });

  it('a leader whose wall clock steps forward does not report itself unhealthy', async () => {
    const t = setup();
    await settle();
    expect(t.elector.isLeader()).toBe(true);
    t.clock.stepWall(3_600_000);
    expect(t.elector.check(20_000)).toBeUndefined();
    await advance(t.clock, 4_000);
    expect(t.elector.isLeader()).toBe(true);
    expect(t.elector.check(20_000)).toBeUndefined();
    t.stop.abort();
    await t.done;
  });

  it('leaves a failed expiry attempt to the next poll instead of retrying at once', async () => {
    const start = Date.parse('2026-01-01T00:00:00Z');
    const t = setup([lease('other', start)]);
    await advance(t.clock, 14_500);
    let down = true;
    t.fake.prependReactor('get', 'leases', () => {
      if (down) throw new ApiError({ code: 500, message: 'etcd down', verb: 'get', resource: 'leases' });
      return undefined;
    });
    t.fake.clearActions();
    // Seen at 0 s, so the attempt comes at 15 s; it fails, and the next is the 16 s poll.
    await advance(t.clock, 1_000, 250);
    expect(t.fake.actions.map((a) => a.verb)).toEqual(['get']);
    down = false;
    await advance(t.clock, 1_000, 250);
    expect(t.fake.actions.map((a) => a.verb)).toEqual(['get', 'get', 'update']);
    expect((await stored(t.fake)).spec?.acquireTime).toBe('2026-01-01T00:00:16.000000Z');
    t.stop.abort();
    await t.done;
  });

  it('takes a released lease (empty holder) at once', async () => {
    const start = Date.parse('2026-01-01T00:00:00Z');
    const t = setup([{ ...lease('', start), spec: { ...lease('', start).spec, leaseDurationSeconds: 1 } }]);
    await settle();
    expect(t.elector.isLeader()).toBe(true);
    expect((await stored(t.fake)).spec?.leaseTransitions).toBe(1);
    t.stop.abort();
    await t.done;
  });

  it('loses leadership when renews fail for renewDeadline, aborting the leading signal', async () => {
    const t = setup();
    await settle();
    const fail = () => {
      throw new ApiError({ code: 500, message: 'etcd down', verb: 'update', resource: 'leases' });
    };
    t.fake.prependReactor('update', 'leases', fail);
    t.fake.prependReactor('get', 'leases', fail);
    await advance(t.clock, 2_000); // renew loop starts: attempts at 2, 4, 6, 8, 10 s
    await advance(t.clock, 9_000);
    expect(t.leadingSignal()?.aborted).toBe(false);
    await advance(t.clock, 1_000); // deadline at 12 s
    await t.done;
    expect(t.leadingSignal()?.aborted).toBe(true);
    expect(t.events).toEqual(['leader:me', 'started', 'stopped']);
    expect(await gauge(t.registry)).toBe('leader_election_master_status{name="ts-kcm"} 0');
  });

  it('loses leadership when a renew request hangs past renewDeadline', async () => {
    const t = setup();
    await settle();
    const hang = () => new Promise(() => {});
    t.fake.prependReactor('update', 'leases', hang);
    await advance(t.clock, 2_000);
    await advance(t.clock, 10_000);
    await t.done;
    expect(t.events).toEqual(['leader:me', 'started', 'stopped']);
  });

  it('releases the lease on cancel: empty holder, 1 s lease, transitions kept', async () => {
    const t = setup();
    await settle();
    t.clock.advance(5_000);
    t.stop.abort();
    await t.done;
    expect((await stored(t.fake)).spec).toEqual({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: '2026-01-01T00:00:05.000000Z',
      renewTime: '2026-01-01T00:00:05.000000Z',
      leaseTransitions: 0,
    });
    expect(t.events).toEqual(['leader:me', 'started', 'stopped']);
    expect(t.leadingSignal()?.aborted).toBe(true);
  });

  it('of two candidates racing for a free lease exactly one wins', async () => {
    const clock = new FakeClock();
    const fake = new FakeKubeClient([], { clock });
    const started: string[] = [];
    const stop = new AbortController();
    const mk = (identity: string) =>
      new LeaderElector({
        client: fake,
        namespace: NS,
        name: NAME,
        identity,
        clock,
        jitterFactor: 0,
        callbacks: { onStartedLeading: () => started.push(identity), onStoppedLeading: () => {} },
      });
    const a = mk('a');
    const b = mk('b');
    const runs = [a.run(stop.signal), b.run(stop.signal)];
    await settle();
    await advance(clock, 10_000);
    expect(started).toHaveLength(1);
    expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1);
    expect((await stored(fake)).spec?.holderIdentity).toBe(started[0]);
    stop.abort();
    await Promise.all(runs);
  });

  it('reports unhealthy only when leading and overdue by more than the tolerance', async () => {
    const t = setup();
    await settle();
    expect(t.elector.check(20_000)).toBeUndefined();
    // Renews hang: the elector still believes it leads until the deadline ends the term.
    t.fake.prependReactor('update', 'leases', () => new Promise(() => {}));
    t.clock.advance(15_000 + 20_000 + 1); // jump without letting the loop run
    expect(t.elector.check(20_000)?.message).toBe('failed election to renew leadership on lease ts-kcm');
    await settle();
    t.stop.abort();
  });

  it('rejects inconsistent timings like client-go', () => {
    const base = {
      client: new FakeKubeClient(),
      namespace: NS,
      name: NAME,
      identity: 'x',
      callbacks: { onStartedLeading: () => {}, onStoppedLeading: () => {} },
    };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(
      'leaseDuration must be greater than renewDeadline',
    );
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(
      'renewDeadline must be greater than retryPeriod*JitterFactor',
    );
    expect(() => new LeaderElector({ ...base, identity: '' })).toThrow('identity must not be empty');
    expect(() => new LeaderElector({ ...base, jitterFactor: 1.2 })).toThrow(
      'jitterFactor must be at least 0 and less than 1',
    );
  });

  it('builds identities as <hostname>_<uuid>', () => {
    expect(newIdentity()).toMatch(/^.+_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});

describe('LeaderElector shutdown', () => {
  it('stops campaigning at once when aborted during a hanging request', async () => {
    const clock = new FakeClock();
    const fake = new FakeKubeClient([], { clock });
    fake.prependReactor('get', 'leases', () => new Promise(() => {}));
    const events: string[] = [];
    const elector = new LeaderElector({
      client: fake,
      namespace: NS,
      name: NAME,
      identity: 'me',
      clock,
      callbacks: {
        onStartedLeading: () => events.push('started'),
        onStoppedLeading: () => events.push('stopped'),
      },
    });
    const stop = new AbortController();
    const done = elector.run(stop.signal);
    await settle();
    stop.abort();
    await done;
    expect(events).toEqual(['stopped']);
  });

  it('gives up releasing after renewDeadline when the apiserver does not answer', async () => {
    const t = setup();
    await settle();
    t.fake.prependReactor('update', 'leases', () => new Promise(() => {}));
    t.stop.abort();
    await settle();
    t.clock.advance(10_000);
    await t.done;
    expect(t.events).toEqual(['leader:me', 'started', 'stopped']);
  });
});

/** A FakeClock that knows when its next timer is due, so a test can jump from wake-up to wake-up. */
class SteppingClock extends FakeClock {
  private readonly due = new Set<{ at: number }>();

  override setTimer(ms: number, fn: () => void): { cancel(): void } {
    const entry = { at: this.monotonicNow() + Math.max(0, ms) };
    this.due.add(entry);
    const handle = super.setTimer(ms, () => {
      this.due.delete(entry);
      fn();
    });
    return {
      cancel: () => {
        this.due.delete(entry);
        handle.cancel();
      },
    };
  }

  nextDue(): number | undefined {
    let next: number | undefined;
    for (const e of this.due) if (next === undefined || e.at < next) next = e.at;
    return next;
  }
}

/** Fire every timer due up to wall time `until`, each at its exact time, letting the loops run after each. */
async function runTo(clock: SteppingClock, until: number, stop: () => boolean = () => false): Promise<void> {
  await settle();
  const untilMono = clock.monotonicNow() + (until - clock.now());
  for (
    let next = clock.nextDue();
    next !== undefined && next <= untilMono && !stop();
    next = clock.nextDue()
  ) {
    clock.advanceTo(next);
    await settle();
  }
  if (!stop() && clock.monotonicNow() < untilMono) clock.advanceTo(untilMono);
}

describe('LeaderElector takeover after the holder dies', () => {
  const LEASE = 15_000;
  const RETRY = 2_000;

  /**
   * Holder `a` leads from t0 and renews every RETRY; standby `b` starts `standbyPhase` ms later;
   * `a` dies (stops without releasing, like SIGKILL) `killPhase` ms after one of its renews.
   * Returns when `b` took over, relative to the kill.
   */
  async function takeover(standbyPhase: number, killPhase: number, random = () => 0): Promise<number> {
    const clock = new SteppingClock();
    const t0 = clock.now();
    const fake = new FakeKubeClient([], { clock });
    const mk = (identity: string, onStarted: () => void) =>
      new LeaderElector({
        client: fake,
        namespace: NS,
        name: NAME,
        identity,
        clock,
        random,
        releaseOnCancel: false,
        callbacks: { onStartedLeading: onStarted, onStoppedLeading: () => {} },
      });
    const stopA = new AbortController();
    const stopB = new AbortController();
    let aLedAt: number | undefined;
    let bLedAt: number | undefined;
    const a = mk('a', () => (aLedAt = clock.now()));
    const runA = a.run(stopA.signal);
    await settle();
    expect(aLedAt).toBe(t0);
    await runTo(clock, t0 + standbyPhase);
    const b = mk('b', () => (bLedAt = clock.now()));
    const runB = b.run(stopB.signal);
    const killedAt = t0 + 10 * RETRY + killPhase;
    await runTo(clock, killedAt);
    expect((await stored(fake)).spec?.holderIdentity).toBe('a');
    expect(bLedAt).toBeUndefined();
    stopA.abort();
    await runA;
    await runTo(clock, killedAt + 3 * LEASE, () => bLedAt !== undefined);
    expect(bLedAt).toBeDefined();
    expect((await stored(fake)).spec?.holderIdentity).toBe('b');
    stopB.abort();
    await runB;
    return bLedAt! - killedAt;
  }

  // Standby phases against the holder's renew grid, and kill phases after a renew, including
  // the coincidences (a poll at the very instant of a renew, a kill right after one).
  const standbyPhases = [0, 1, 500, 1_000, 1_999, 2_000, 3_333];
  const killPhases = [0, 1, 999, 1_999];
  const cases = standbyPhases.flatMap((s) => killPhases.map((k) => [s, k] as const));

  it.each(cases)(
    'standby %i ms after the holder, kill %i ms after a renew: takeover within lease + retry',
    async (standbyPhase, killPhase) => {
      const took = await takeover(standbyPhase, killPhase);
      expect(took).toBeLessThanOrEqual(LEASE + RETRY);
      // Never early: the last renew was at most one retry period before the kill.
      expect(took).toBeGreaterThan(LEASE - RETRY);
    },
  );

  it('comes within 1 ms of the bound when each poll just misses a renew', async () => {
    // Polls 1 ms before each renew; the kill right after a renew: that renew is seen a whole
    // period late, and nothing can wait less than the lease after seeing it.
    expect(await takeover(1_999, 0)).toBe(LEASE + RETRY - 1);
    // Near the other end: the kill 1 ms before a renew, the previous renew seen 1 ms after it.
    expect(await takeover(1, 1_999)).toBe(LEASE - RETRY + 2);
  });

  it.each([0.5, 0.999])('keeps the bound with poll jitter (random %p)', async (r) => {
    for (const [s, k] of [
      [0, 0],
      [700, 1_999],
      [1_999, 1],
    ] as const) {
      const took = await takeover(s, k, () => r);
      expect(took).toBeLessThanOrEqual(LEASE + RETRY);
      expect(took).toBeGreaterThan(LEASE - RETRY);
    }
  });
});
