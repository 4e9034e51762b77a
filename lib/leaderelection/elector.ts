import type { Registry } from 'prom-client';
import type { Lease } from '../api/index.js';
import type { KubeClient, ResourceClient } from '../client/types.js';
import { Resources } from '../client/types.js';
import { isNotFound } from '../client/errors.js';
import { RealClock, type Clock } from '../clock/index.js';
import { errorMessage, nopLogger, type Logger } from '../log/index.js';
import { Gauge, getOrCreate } from '../metrics/index.js';
import { formatMicroTime } from '../api/index.js';
import { leaseSpecFromRecord, recordFromLease, sameRecord, type LeaderElectionRecord } from './record.js';

/** client-go's defaults (and kube-controller-manager's flags): 15 s lease, 10 s renew deadline, 2 s retry. */
export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;
/**
 * client-go's JitterFactor. client-go stretches each standby poll to retryPeriod * (1 + rand * 1.2);
 * we do not (see acquire()), but keep the constant to accept and reject timings exactly as
 * kube-controller-manager does: renewDeadline must exceed retryPeriod * 1.2.
 */
export const DEFAULT_JITTER_FACTOR = 1.2;
/**
 * Standby polls come every retryPeriod * (1 - rand * 0.1): enough spread that candidates
 * started together drift apart, and only ever shorter than retryPeriod, so the takeover bound
 * (leaseDuration + retryPeriod, see acquire()) holds whatever the dice say.
 */
export const DEFAULT_STANDBY_JITTER = 0.1;

export interface LeaderCallbacks {
  /** Called (not awaited) once the lease is ours; `signal` aborts when we stop leading for any reason. */
  onStartedLeading(signal: AbortSignal): void;
  /** Called once when run() ends, whether or not this process ever led. */
  onStoppedLeading(): void;
  /** Called when the observed holder changes (including to ourselves). */
  onNewLeader?(identity: string): void;
}

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  callbacks: LeaderCallbacks;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Write an empty holder when run()'s signal aborts, so a successor need not wait out the lease. Default true. */
  releaseOnCancel?: boolean;
  /** Standby polls are shortened by up to this fraction of retryPeriod, in [0, 1). Default 0.1. */
  jitterFactor?: number;
  random?: () => number;
  clock?: Clock;
  logger?: Logger;
  registry?: Registry;
}

/**
 * Lease-based leader election with client-go's algorithm: a candidate takes the lease only
 * once its holder has not changed it for leaseDurationSeconds *as measured on our own clock*
 * (so skew between machines does not matter); writes carry the resourceVersion read, so of
 * two racing candidates exactly one wins; a leader that cannot renew within renewDeadline
 * stops leading. One departure: a standby times its takeover attempt for the moment the lease
 * runs out instead of waiting for a jittered poll (see acquire()).
 */
export class LeaderElector {
  readonly identity: string;
  private readonly opts: Required<Omit<LeaderElectorOptions, 'registry' | 'callbacks'>> & {
    callbacks: LeaderCallbacks;
  };
  private readonly leases: ResourceClient<Lease>;
  private readonly gauge?: Gauge<'name'>;
  private observedRecord?: LeaderElectionRecord;
  private observedLease?: Lease;
  /** When (clock.monotonicNow()) we last saw the record change: the start of its lease, on our clock. */
  private observedTime = 0;
  private reportedLeader = '';

  constructor(options: LeaderElectorOptions) {
    const opts = {
      leaseDurationMs: DEFAULT_LEASE_DURATION_MS,
      renewDeadlineMs: DEFAULT_RENEW_DEADLINE_MS,
      retryPeriodMs: DEFAULT_RETRY_PERIOD_MS,
      releaseOnCancel: true,
      jitterFactor: DEFAULT_STANDBY_JITTER,
      random: Math.random,
      clock: new RealClock(),
      logger: nopLogger(),
      ...stripUndefined(options),
    };
    validate(opts);
    this.opts = { ...opts, logger: opts.logger.child({ lease: `${opts.namespace}/${opts.name}` }) };
    this.identity = opts.identity;
    this.leases = opts.client.resource<Lease>(Resources.leases);
    if (options.registry) {
      const registry = options.registry;
      this.gauge = getOrCreate(
        registry,
        'leader_election_master_status',
        () =>
          new Gauge({
            name: 'leader_election_master_status',
            help: '1 while this process holds the lease called `name`, 0 while it is a standby.',
            labelNames: ['name'],
            registers: [registry],
          }),
      );
      this.gauge.set({ name: opts.name }, 0);
    }
  }

  /** True while the last record we wrote or read names us as holder. */
  isLeader(): boolean {
    return this.observedRecord?.holderIdentity === this.identity;
  }

  /** Identity of the holder we last observed ('' if none). */
  getLeader(): string {
    return this.observedRecord?.holderIdentity ?? '';
  }

  /**
   * Health check in the manner of client-go's HealthzAdaptor: a leader whose last successful
   * renew is older than the lease plus `maxTolerableExpiredMs` is stuck. Standbys are healthy.
   */
  check(maxTolerableExpiredMs = 20_000): Error | undefined {
    if (!this.isLeader()) return undefined;
    const overdue =
      this.opts.clock.monotonicNow() -
      (this.observedTime + this.opts.leaseDurationMs + maxTolerableExpiredMs);
    if (overdue > 0) return new Error(`failed election to renew leadership on lease ${this.opts.name}`);
    return undefined;
  }

  /**
   * Campaign until we lead, then renew until `signal` aborts (release the lease) or a renew
   * misses its deadline (leadership lost). Never throws.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { callbacks, logger } = this.opts;
    try {
      if (!(await this.acquire(signal))) return;
      const leading = new AbortController();
      try {
        callbacks.onStartedLeading(leading.signal);
      } catch (err) {
        logger.error('onStartedLeading failed', { err: errorMessage(err) });
      }
      await this.renew(signal);
      leading.abort(new Error('leadership ended'));
      if (signal.aborted && this.opts.releaseOnCancel) await this.release();
    } finally {
      this.gauge?.set({ name: this.opts.name }, 0);
      try {
        callbacks.onStoppedLeading();
      } catch (err) {
        logger.error('onStoppedLeading failed', { err: errorMessage(err) });
      }
    }
  }

  /**
   * Poll until the lease is ours. Takeover after a holder dies comes within leaseDuration +
   * retryPeriod of its death (client-go: up to about leaseDuration + 2 * 2.2 * retryPeriod):
   *
   * - The holder writes a new renewTime every retryPeriod; say it dies at K, its last write
   *   landing at R <= K (a write already in flight at K may land one request later).
   * - We poll on a fixed grid at most retryPeriod apart (jitter only shortens a period), so
   *   the first poll to read R's record starts no later than R + retryPeriod, and
   *   observedTime O (when its answer arrives) is at most one request later.
   * - Nothing changes the record after R, so O stays put; we need not wait for a poll to
   *   notice expiry, because we attempt exactly at O + leaseDuration, the moment our own
   *   clock says the lease ran out (a timer firing a little early costs one more GET).
   * - Takeover = O + leaseDuration <= K + retryPeriod + leaseDuration (+ request round trips).
   *
   * Safety is client-go's: expiry is measured from when *we* saw the record change, never
   * from the holder's timestamps, and the holder gives up after renewDeadline < leaseDuration.
   */
  private async acquire(signal: AbortSignal): Promise<boolean> {
    const { logger, clock } = this.opts;
    logger.info('attempting to acquire leader lease', { identity: this.identity });
    let pollAt = clock.monotonicNow();
    let polling = true; // whether this attempt is the grid poll due at pollAt (else an expiry attempt)
    while (!signal.aborted) {
      // A request hanging on a dead apiserver must not hold up shutdown.
      const ok = await unlessAborted(this.tryAcquireOrRenew(), signal);
      if (signal.aborted) break;
      this.maybeReportTransition();
      if (ok) {
        logger.info('successfully acquired lease', { identity: this.identity });
        this.gauge?.set({ name: this.opts.name }, 1);
        return true;
      }
      const now = clock.monotonicNow();
      // Keep the grid while requests are quick (a timer firing late or early does not shift
      // it); after a request slower than a period, poll again at once.
      if (polling) pollAt = Math.max(now, pollAt + this.standbyPollPeriod());
      const expiry = this.othersLeaseExpiry();
      // Already expired yet not ours (a rival won the write, or the GET failed): leave it to the grid.
      polling = expiry === undefined || expiry <= now || pollAt <= expiry;
      const wakeAt = polling ? pollAt : expiry!;
      if (!(await sleepOrAbort(clock, wakeAt - now, signal))) break;
    }
    return false;
  }

  private standbyPollPeriod(): number {
    const { retryPeriodMs, jitterFactor, random } = this.opts;
    return retryPeriodMs * (1 - random() * jitterFactor);
  }

  /** When, on our clock, the lease we last saw another process hold runs out (undefined if free or ours). */
  private othersLeaseExpiry(): number | undefined {
    const rec = this.observedRecord;
    if (!rec || rec.holderIdentity === '' || rec.holderIdentity === this.identity) return undefined;
    return this.observedTime + rec.leaseDurationSeconds * 1000;
  }

  /** Renew every retryPeriod; returns when `signal` aborts or a renew misses the deadline. */
  private async renew(signal: AbortSignal): Promise<void> {
    const { logger, clock, retryPeriodMs } = this.opts;
    // The lease was just written: the first renew is due one retry period from now.
    while (await sleepOrAbort(clock, retryPeriodMs, signal)) {
      const renewed = await this.renewWithinDeadline(signal);
      this.maybeReportTransition();
      if (!renewed) {
        if (signal.aborted) return;
        logger.error('failed to renew lease: timed out waiting for the condition', {
          renewDeadlineMs: this.opts.renewDeadlineMs,
        });
        return;
      }
    }
  }

  /** Retry every retryPeriod until one renew succeeds or renewDeadline passes. */
  private async renewWithinDeadline(signal: AbortSignal): Promise<boolean> {
    const { clock, renewDeadlineMs, retryPeriodMs } = this.opts;
    const deadline = new AbortController();
    const timer = clock.setTimer(renewDeadlineMs, () => deadline.abort());
    const stop = AbortSignal.any([signal, deadline.signal]);
    try {
      for (;;) {
        // A hung request must not keep us "leading" past the deadline: race it.
        const ok = await Promise.race([this.tryAcquireOrRenew(), abortedAsFalse(deadline.signal)]);
        if (ok && !deadline.signal.aborted) return true;
        if (stop.aborted) return false;
        if (!(await sleepOrAbort(clock, retryPeriodMs, stop))) return false;
      }
    } finally {
      timer.cancel();
    }
  }

  /** One attempt to take or keep the lease. Never throws. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { clock, logger, namespace, name } = this.opts;
    // Wall time only for what the Lease says; every expiry decision uses the monotonic clock.
    const wallNow = formatMicroTime(clock.now());
    const desired: LeaderElectionRecord = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.round(this.opts.leaseDurationMs / 1000),
      acquireTime: wallNow,
      renewTime: wallNow,
      leaderTransitions: 0,
    };

    // Fast path (as client-go since 1.27): a leader with a valid lease renews from its cached copy, no GET.
    if (
      this.isLeader() &&
      this.isLeaseValid(clock.monotonicNow()) &&
      this.observedLease &&
      this.observedRecord
    ) {
      const rec = {
        ...desired,
        acquireTime: this.observedRecord.acquireTime,
        leaderTransitions: this.observedRecord.leaderTransitions,
      };
      try {
        const updated = await this.leases.update(
          { ...this.observedLease, spec: leaseSpecFromRecord(rec) },
          { namespace },
        );
        this.observe(updated, rec, clock.monotonicNow());
        return true;
      } catch (err) {
        logger.debug('optimistic lease renew failed, reading the lease', { err: errorMessage(err) });
      }
    }

    let lease: Lease;
    try {
      lease = await this.leases.get(name, namespace);
    } catch (err) {
      if (!isNotFound(err)) {
        logger.error('error retrieving lease', { err: errorMessage(err) });
        return false;
      }
      try {
        const created = await this.leases.create(
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: leaseSpecFromRecord(desired),
          },
          { namespace },
        );
        this.observe(created, desired, clock.monotonicNow());
        return true;
      } catch (createErr) {
        logger.error('error initially creating lease', { err: errorMessage(createErr) });
        return false;
      }
    }

    const old = recordFromLease(lease);
    // As client-go: the record counts as seen when the answer arrives, not when we asked.
    const seenAt = clock.monotonicNow();
    if (!sameRecord(this.observedRecord, old)) {
      // The holder wrote something new: restart *our* expiry clock from now.
      this.observedRecord = old;
      this.observedLease = lease;
      this.observedTime = seenAt;
    }
    if (old.holderIdentity !== '' && this.isLeaseValid(seenAt) && !this.isLeader()) {
      logger.debug('lease is held by another holder and has not yet expired', { holder: old.holderIdentity });
      return false;
    }
    if (this.isLeader()) {
      desired.acquireTime = old.acquireTime;
      desired.leaderTransitions = old.leaderTransitions;
    } else {
      desired.leaderTransitions = old.leaderTransitions + 1;
    }
    try {
      const updated = await this.leases.update(
        { ...lease, spec: leaseSpecFromRecord(desired) },
        { namespace },
      );
      this.observe(updated, desired, clock.monotonicNow());
      return true;
    } catch (err) {
      // A conflict here means another candidate wrote first: it won this round.
      logger.error('failed to update lease', { err: errorMessage(err) });
      return false;
    }
  }

  /** Write an empty holder (lease 1 s) so a successor can take over at once. */
  private async release(): Promise<void> {
    const { logger, clock, namespace } = this.opts;
    if (!this.isLeader() || !this.observedLease || !this.observedRecord) return;
    const now = formatMicroTime(clock.now());
    const rec: LeaderElectionRecord = {
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: now,
      renewTime: now,
      leaderTransitions: this.observedRecord.leaderTransitions,
    };
    // Bounded like a renew: a shutdown must not hang on an unreachable apiserver.
    const deadline = new AbortController();
    const timer = clock.setTimer(this.opts.renewDeadlineMs, () => deadline.abort());
    try {
      const write = this.leases.update(
        { ...this.observedLease, spec: leaseSpecFromRecord(rec) },
        { namespace },
      );
      const updated = await Promise.race([write, abortedAsFalse(deadline.signal)]);
      if (updated === false) throw new Error('timed out');
      this.observe(updated, rec, clock.monotonicNow());
      logger.info('released leader lease', { identity: this.identity });
    } catch (err) {
      logger.error('failed to release lease', { err: errorMessage(err) });
    } finally {
      timer.cancel();
    }
  }

  private observe(lease: Lease, rec: LeaderElectionRecord, now: number): void {
    this.observedLease = lease;
    this.observedRecord = rec;
    this.observedTime = now;
  }

  private isLeaseValid(now: number): boolean {
    const seconds = this.observedRecord?.leaseDurationSeconds ?? 0;
    return this.observedTime + seconds * 1000 > now;
  }

  private maybeReportTransition(): void {
    const holder = this.getLeader();
    if (holder === this.reportedLeader) return;
    this.reportedLeader = holder;
    if (holder !== '') this.opts.logger.info('new leader observed', { holder });
    try {
      this.opts.callbacks.onNewLeader?.(holder);
    } catch (err) {
      this.opts.logger.error('onNewLeader failed', { err: errorMessage(err) });
    }
  }
}

function validate(o: {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  jitterFactor: number;
  identity: string;
}): void {
  if (!(o.leaseDurationMs > o.renewDeadlineMs))
    throw new Error('leaseDuration must be greater than renewDeadline');
  if (!(o.renewDeadlineMs > o.retryPeriodMs * DEFAULT_JITTER_FACTOR))
    throw new Error('renewDeadline must be greater than retryPeriod*JitterFactor');
  if (!(o.jitterFactor >= 0 && o.jitterFactor < 1))
    throw new Error('jitterFactor must be at least 0 and less than 1');
  if (!(o.retryPeriodMs > 0)) throw new Error('retryPeriod must be greater than zero');
  if (o.leaseDurationMs < 1000)
    throw new Error('leaseDuration must be at least 1s (the Lease holds whole seconds)');
  if (o.identity === '') throw new Error('leader election identity must not be empty');
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Sleep on the clock; false if `signal` aborted first. */
async function sleepOrAbort(clock: Clock, ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await clock.sleep(ms, signal);
    return true;
  } catch {
    return false;
  }
}

/** `p`'s result, or false as soon as `signal` aborts; leaves no listener behind on the long-lived signal. */
async function unlessAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | false> {
  if (signal.aborted) return false;
  let onAbort = (): void => {};
  const aborted = new Promise<false>((resolve) => {
    onAbort = () => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function abortedAsFalse(signal: AbortSignal): Promise<false> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    signal.addEventListener('abort', () => resolve(false), { once: true });
  });
}
