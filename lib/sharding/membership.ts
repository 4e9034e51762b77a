/**
 * Ring membership over Leases. Each replica holds one Lease of its own, labelled
 * `sharding.ts-kcm.io/ring=<ring>` in the leader-election namespace, renews it every retry
 * period and lists the ring's Leases at the same time. Every replica builds the same HashRing from
 * the members it considers live, and reconciles a key only while it is *active* and owns it.
 *
 * The timing rules (the argument is in docs/sharding.md; membership.test.ts drives each case
 * with a FakeClock). L = lease duration, D = renew deadline, P = retry period, F = list freshness:
 * - liveness of another member is judged as the leader elector judges a holder: by when *we*
 *   saw its Lease record change, on our monotonic clock; it is dropped L after that (or at once
 *   when it writes an empty holder, a graceful leave). A Lease missing from a list does not
 *   drop its member early: it expires like any other;
 * - we are active while (a) our last successful renew *started* less than D ago, (b) our last
 *   successful list *started* less than F ago, and (c) our current stint of unbroken renewals
 *   began at least L ago (the warm-up: every other active replica has listed our Lease by then
 *   and handed over the keys that move to us). Missing (a) ends the stint: the next renew
 *   starts a new one, with a new warm-up;
 * - with F + D <= L - M, a replica that stops renewing or listing has stopped its keys, and had
 *   M (the drain margin) to finish in-flight work for them, before any other replica drops it.
 *
 * Each member publishes its virtual-node count on its Lease (VIRTUAL_NODES_ANNOTATION), and
 * every replica places that member's points with that count (absent: 128, the count before
 * the annotation existed). A member's points then do not depend on who looks at them, so the
 * ring property holds across a rolling upgrade that changes the default count.
 */
import type { Registry } from 'prom-client';
import type { Lease } from '../api/index.js';
import { formatMicroTime } from '../api/index.js';
import { isAlreadyExists, isConflict, isNotFound } from '../client/errors.js';
import type { KubeClient, ResourceClient } from '../client/types.js';
import { Resources } from '../client/types.js';
import { RealClock, type Clock, type TimerHandle } from '../clock/index.js';
import { errorMessage, nopLogger, type Logger } from '../log/index.js';
import { Counter, Gauge, getOrCreate } from '../metrics/index.js';
import { fnv1a64, hex64 } from './hash.js';
import { DEFAULT_VIRTUAL_NODES, HashRing, LEGACY_VIRTUAL_NODES, MAX_VIRTUAL_NODES } from './ring.js';

/** The label every Lease of a ring carries; its value is the ring's name. */
export const RING_LABEL = 'sharding.ts-kcm.io/ring';

/** The annotation on a member's Lease giving its virtual-node count (a decimal integer). */
export const VIRTUAL_NODES_ANNOTATION = 'sharding.ts-kcm.io/virtual-nodes';

/** Where this replica stands, as every controller's queue filter reads it. */
export interface ShardState {
  ring: HashRing;
  /** True while this replica may reconcile the keys it owns (see the rules above). */
  active: boolean;
  identity: string;
  /** Changes with every new ring or activity flip: a controller compares it to re-enqueue or drop keys. */
  generation: number;
}

export interface ShardMembershipOptions {
  client: KubeClient;
  namespace: string;
  /** The ring's name: a label value. */
  ring: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Default: 60 % of (lease duration − renew deadline), leaving the rest as drain margin. */
  listFreshnessMs?: number;
  /** This replica's virtual-node count, published on its Lease. Default DEFAULT_VIRTUAL_NODES. */
  virtualNodes?: number;
  clock?: Clock;
  logger?: Logger;
  registry?: Registry;
}

interface Observed {
  holder: string;
  renewTime: string;
  durationMs: number;
  /** The member's published count (LEGACY_VIRTUAL_NODES when absent or invalid). */
  virtualNodes: number;
  resourceVersion: string;
  /** monotonicNow() when we first saw this record. */
  seenAt: number;
}

/** A Kubernetes label value. */
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export class ShardMembership {
  readonly identity: string;
  readonly ringName: string;
  readonly leaseName: string;
  private readonly o: Required<Omit<ShardMembershipOptions, 'registry' | 'client'>>;
  private readonly leases: ResourceClient<Lease>;
  private readonly listeners = new Set<(s: ShardState) => void>();
  private readonly observed = new Map<string, Observed>();
  private readonly membersGauge?: Gauge<'ring'>;
  private readonly rebalances?: Counter<string>;
  private ownLease?: Lease;
  /** monotonicNow() at the start of our last successful renew / list. */
  private renewedAt = Number.NEGATIVE_INFINITY;
  private listedAt = Number.NEGATIVE_INFINITY;
  /** monotonicNow() when the current stint's first renew answered; undefined: no stint. */
  private stintStart?: number;
  private current: ShardState;
  private timer?: TimerHandle;
  private stopped = false;

  constructor(opts: ShardMembershipOptions) {
    const listFreshnessMs = opts.listFreshnessMs ?? 0.6 * (opts.leaseDurationMs - opts.renewDeadlineMs);
    this.o = {
      virtualNodes: DEFAULT_VIRTUAL_NODES,
      clock: new RealClock(),
      logger: nopLogger(),
      ...stripUndefined(opts),
      listFreshnessMs,
    };
    validate(this.o);
    this.identity = opts.identity;
    this.ringName = opts.ring;
    this.leaseName = leaseNameFor(opts.ring, opts.identity);
    this.o.logger = this.o.logger.child({ ring: opts.ring });
    this.leases = opts.client.resource<Lease>(Resources.leases);
    this.current = {
      ring: new HashRing([], this.o.virtualNodes),
      active: false,
      identity: this.identity,
      generation: 0,
    };
    if (opts.registry) {
      const registry = opts.registry;
      this.membersGauge = getOrCreate(
        registry,
        'ts_kcm_shard_members',
        () =>
          new Gauge({
            name: 'ts_kcm_shard_members',
            help: 'Members of the sharding ring this replica currently sees (itself included once active).',
            labelNames: ['ring'],
            registers: [registry],
          }),
      );
      this.membersGauge.set({ ring: opts.ring }, 0);
      this.rebalances = getOrCreate(
        registry,
        'ts_kcm_shard_rebalances_total',
        () =>
          new Counter({
            name: 'ts_kcm_shard_rebalances_total',
            help: 'Times the key ownership of this replica changed: a new member set, or this replica became active or inactive.',
            registers: [registry],
          }),
      );
    }
  }

  state(): ShardState {
    return this.current;
  }

  /** True when this replica may reconcile keys hashing to `shardKey` right now. */
  owns(shardKey: string): boolean {
    const s = this.current;
    return s.active && s.ring.owner(shardKey) === this.identity;
  }

  /** Called (synchronously) on every new state; returns an unsubscribe function. */
  subscribe(listener: (s: ShardState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One line for /readyz?verbose and logs. */
  describe(): string {
    const s = this.current;
    const { clock, leaseDurationMs, listFreshnessMs } = this.o;
    const now = clock.monotonicNow();
    const me = s.active
      ? 'active'
      : this.stopped
        ? 'left'
        : this.stintStart === undefined
          ? 'joining'
          : now < this.stintStart + leaseDurationMs
            ? 'warming-up'
            : now >= this.listedAt + listFreshnessMs
              ? 'list-stale'
              : 'inactive';
    return `ring=${this.ringName} members=${s.ring.members.length} [${s.ring.toString()}] self=${me}`;
  }

  /**
   * Renew and list every retry period until `signal` aborts, then leave the ring: write an
   * empty holder so the others take our keys at once. Abort only after the controllers have
   * stopped (drained) — the release tells the others we no longer work. Never throws.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { clock, retryPeriodMs, logger } = this.o;
    logger.info('joining sharding ring', { identity: this.identity, lease: this.leaseName });
    let next = clock.monotonicNow();
    while (!signal.aborted) {
      await this.tick(signal);
      next = Math.max(clock.monotonicNow(), next + retryPeriodMs);
      try {
        await clock.sleep(next - clock.monotonicNow(), signal);
      } catch {
        break;
      }
    }
    this.stopped = true;
    this.timer?.cancel();
    this.setState(false);
    await this.release();
  }

  /**
   * One round: renew our Lease and list the ring's, side by side, so a slow renew does not
   * delay the list (each list must start within the freshness window of the last).
   */
  async tick(signal?: AbortSignal): Promise<void> {
    await Promise.all([this.renew(signal), this.list(signal)]);
    this.evaluate();
  }

  private async renew(signal?: AbortSignal): Promise<void> {
    const { clock, logger, renewDeadlineMs } = this.o;
    const start = clock.monotonicNow();
    // A renew that answers after the deadline counts as failed (the write may still land:
    // that only makes the others keep us longer, while we already stopped).
    const deadline =
      this.stintStart === undefined ? start + renewDeadlineMs : this.renewedAt + renewDeadlineMs;
    try {
      const lease = await raceDeadline(this.writeOwnLease(), clock, Math.max(0, deadline - start), signal);
      const now = clock.monotonicNow();
      if (lease === undefined) throw new Error('timed out');
      this.ownLease = lease;
      if (this.stintStart === undefined || now >= this.renewedAt + renewDeadlineMs) {
        if (this.stintStart !== undefined) logger.info('renew deadline was missed: starting a new stint');
        this.stintStart = now;
      }
      this.renewedAt = start;
    } catch (err) {
      if (signal?.aborted) return;
      logger.error('failed to renew shard lease', { err: errorMessage(err) });
    }
  }

  private async writeOwnLease(): Promise<Lease> {
    const { clock, namespace, leaseDurationMs } = this.o;
    const now = formatMicroTime(clock.now());
    const spec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.round(leaseDurationMs / 1000),
      renewTime: now,
    };
    if (this.ownLease) {
      try {
        return await this.leases.update(
          { ...this.ownLease, spec: { ...this.ownLease.spec, ...spec } },
          { namespace },
        );
      } catch (err) {
        if (!isConflict(err) && !isNotFound(err)) throw err;
        this.ownLease = undefined;
      }
    }
    try {
      return await this.leases.create(
        {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: {
            name: this.leaseName,
            namespace,
            labels: { [RING_LABEL]: this.ringName },
            annotations: { [VIRTUAL_NODES_ANNOTATION]: String(this.o.virtualNodes) },
          },
          spec: { ...spec, acquireTime: now },
        },
        { namespace },
      );
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const existing = await this.leases.get(this.leaseName, namespace);
      const metadata = {
        ...existing.metadata,
        annotations: {
          ...existing.metadata.annotations,
          [VIRTUAL_NODES_ANNOTATION]: String(this.o.virtualNodes),
        },
      };
      return this.leases.update(
        { ...existing, metadata, spec: { ...existing.spec, ...spec, acquireTime: now } },
        { namespace },
      );
    }
  }

  private async list(signal?: AbortSignal): Promise<void> {
    const { clock, namespace, logger, renewDeadlineMs } = this.o;
    const start = clock.monotonicNow();
    try {
      const list = await raceDeadline(
        this.leases.list({ namespace, labelSelector: `${RING_LABEL}=${this.ringName}` }),
        clock,
        renewDeadlineMs,
        signal,
      );
      if (list === undefined) throw new Error('timed out');
      const seenAt = clock.monotonicNow();
      for (const lease of list.items) {
        const name = lease.metadata.name ?? '';
        if (name === this.leaseName) continue;
        const spec = lease.spec ?? {};
        const rec = {
          holder: spec.holderIdentity ?? '',
          renewTime: spec.renewTime ?? '',
          durationMs: (spec.leaseDurationSeconds ?? 0) * 1000,
          virtualNodes: publishedVirtualNodes(lease),
          resourceVersion: lease.metadata.resourceVersion ?? '',
        };
        const old = this.observed.get(name);
        if (
          old &&
          old.holder === rec.holder &&
          old.renewTime === rec.renewTime &&
          old.durationMs === rec.durationMs &&
          old.virtualNodes === rec.virtualNodes
        )
          continue;
        this.observed.set(name, { ...rec, seenAt });
      }
      this.listedAt = start;
    } catch (err) {
      if (signal?.aborted) return;
      logger.error('failed to list the ring’s leases', { err: errorMessage(err) });
    }
  }

  /** Recompute the state from the observations and the clock; notify on change; arm the next check. */
  private evaluate(): void {
    if (this.stopped) return;
    const { clock, leaseDurationMs, renewDeadlineMs, listFreshnessMs } = this.o;
    const now = clock.monotonicNow();
    const wakeups: number[] = [];
    const members = new Map<string, number>();
    for (const [name, obs] of this.observed) {
      const expires = obs.seenAt + obs.durationMs;
      if (obs.holder === '' || expires <= now) {
        // Forget long-gone Leases' observations (the Lease objects themselves are left alone).
        if (expires + 2 * leaseDurationMs <= now) this.observed.delete(name);
        continue;
      }
      // Two Leases naming one holder (a hand-made copy): the smaller count, so every replica picks the same.
      members.set(obs.holder, Math.min(obs.virtualNodes, members.get(obs.holder) ?? Infinity));
      wakeups.push(expires);
    }
    let active = false;
    if (this.stintStart !== undefined) {
      const renewOk = this.renewedAt + renewDeadlineMs;
      const listOk = this.listedAt + listFreshnessMs;
      const warm = this.stintStart + leaseDurationMs;
      if (now >= renewOk)
        this.stintStart = undefined; // the stint is over; the next renew starts another
      else {
        members.set(this.identity, this.o.virtualNodes);
        active = now < listOk && now >= warm;
        wakeups.push(renewOk, listOk);
        if (now < warm) wakeups.push(warm);
      }
    }
    this.setState(active, members);
    this.timer?.cancel();
    const next = Math.min(...wakeups.filter((t) => t > now));
    if (Number.isFinite(next)) this.timer = clock.setTimer(next - now, () => this.evaluate());
  }

  private setState(active: boolean, members?: ReadonlyMap<string, number>): void {
    const cur = this.current;
    const ring =
      members === undefined || cur.ring.sameMembers(members)
        ? cur.ring
        : new HashRing(members, this.o.virtualNodes);
    if (ring === cur.ring && active === cur.active) return;
    this.current = { ring, active, identity: this.identity, generation: cur.generation + 1 };
    this.membersGauge?.set({ ring: this.ringName }, ring.members.length);
    this.rebalances?.inc();
    this.o.logger.info('shard ownership changed', { members: ring.members, active });
    for (const l of this.listeners) {
      try {
        l(this.current);
      } catch (err) {
        this.o.logger.error('shard listener failed', { err: errorMessage(err) });
      }
    }
  }

  /** Empty holder: the others drop us at their next list instead of after a lease duration. */
  private async release(): Promise<void> {
    const { namespace, logger, clock, renewDeadlineMs } = this.o;
    if (!this.ownLease) return;
    const releaseOnce = async (lease: Lease): Promise<Lease> =>
      this.leases.update(
        { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
        { namespace },
      );
    // A renew aborted on the way out may still have landed: then our copy is stale; read and retry.
    const write = releaseOnce(this.ownLease).catch(async (err: unknown) => {
      if (!isConflict(err)) throw err;
      return releaseOnce(await this.leases.get(this.leaseName, namespace));
    });
    try {
      const released = await raceDeadline(write, clock, renewDeadlineMs);
      if (released === undefined) throw new Error('timed out');
      logger.info('left sharding ring', { lease: this.leaseName });
    } catch (err) {
      logger.error('failed to release shard lease', { err: errorMessage(err) });
    }
  }
}

/** A Lease name per (ring, identity): DNS-safe whatever the identity looks like. */
export function leaseNameFor(ring: string, identity: string): string {
  return `${ring}-${hex64(fnv1a64(identity)).slice(2)}`.toLowerCase().replace(/[^a-z0-9.-]/g, '-');
}

/**
 * The count a member published; LEGACY_VIRTUAL_NODES when absent (a replica from before the
 * annotation) or not an integer in [1, MAX_VIRTUAL_NODES] (only a hand edit writes that: every
 * replica validates its own count).
 */
export function publishedVirtualNodes(lease: Lease): number {
  const raw = lease.metadata.annotations?.[VIRTUAL_NODES_ANNOTATION];
  if (raw === undefined || !/^[1-9][0-9]{0,4}$/.test(raw)) return LEGACY_VIRTUAL_NODES;
  const n = Number(raw);
  return n <= MAX_VIRTUAL_NODES ? n : LEGACY_VIRTUAL_NODES;
}

function validate(o: Required<Omit<ShardMembershipOptions, 'registry' | 'client'>>): void {
  if (!LABEL_VALUE.test(o.ring) || o.ring === '' || o.ring.length > 40)
    throw new Error(`sharding ring "${o.ring}" must be a label value of at most 40 characters`);
  if (!(o.leaseDurationMs > o.renewDeadlineMs))
    throw new Error('leaseDuration must be greater than renewDeadline');
  if (!(o.retryPeriodMs > 0 && o.renewDeadlineMs > o.retryPeriodMs))
    throw new Error('renewDeadline must be greater than retryPeriod');
  if (!(o.listFreshnessMs > o.retryPeriodMs))
    throw new Error(
      'list freshness (default 0.6 × (leaseDuration − renewDeadline)) must exceed retryPeriod: lengthen the lease or shorten the retry period',
    );
  if (o.listFreshnessMs + o.renewDeadlineMs > o.leaseDurationMs)
    throw new Error('list freshness + renewDeadline must not exceed leaseDuration');
  if (o.leaseDurationMs < 1000) throw new Error('leaseDuration must be at least 1s');
  if (o.identity === '') throw new Error('identity must not be empty');
  if (!Number.isInteger(o.virtualNodes) || o.virtualNodes < 1 || o.virtualNodes > MAX_VIRTUAL_NODES)
    throw new Error(`virtualNodes must be an integer in [1, ${MAX_VIRTUAL_NODES}]`);
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** `p`'s value, or undefined once `ms` passed on the clock or `signal` aborted. */
async function raceDeadline<T>(
  p: Promise<T>,
  clock: Clock,
  ms: number,
  signal?: AbortSignal,
): Promise<T | undefined> {
  let timer: TimerHandle | undefined;
  let onAbort = (): void => {};
  const timeout = new Promise<undefined>((resolve) => {
    timer = clock.setTimer(ms, () => resolve(undefined));
    onAbort = () => resolve(undefined);
    if (signal?.aborted) resolve(undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    timer?.cancel();
    signal?.removeEventListener('abort', onAbort);
  }
}
