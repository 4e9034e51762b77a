/**
 * The per-controller cache-sync gate, as upstream's WaitForNamedCacheSync: each controller
 * starts its workers as soon as the informers *it* asked for have synced, so one informer that
 * can never sync (an API the server does not serve, RBAC Forbidden) holds back only the
 * controllers that need it. Informers stay shared: the gate only remembers which of the
 * factory's informers a controller took.
 */
import type { KubeObject } from '../api/index.js';
import { isForbidden, isNotFound } from '../client/errors.js';
import type { ResourceRef } from '../client/types.js';
import type { Clock } from '../clock/index.js';
import type { InformerOptions, SharedIndexInformer, SharedInformerFactory } from '../informer/types.js';
import { errorMessage, type Logger } from '../log/index.js';

/** client-go's WaitForCacheSync polls every 100 ms. */
export const CACHE_SYNC_POLL_MS = 100;

/**
 * A view of the shared factory for one controller: informerFor still returns the shared
 * informer, and the view records it so the controller's gate waits for exactly those.
 */
export class ControllerInformers implements SharedInformerFactory {
  readonly used: SharedIndexInformer[] = [];

  constructor(
    private readonly shared: SharedInformerFactory,
    private readonly clock: Clock,
  ) {}

  informerFor<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    opts?: InformerOptions<T>,
  ): SharedIndexInformer<T> {
    const informer = this.shared.informerFor<T>(ref, opts);
    const any = informer as unknown as SharedIndexInformer;
    if (!this.used.includes(any)) this.used.push(any);
    return informer;
  }

  start(signal: AbortSignal): void {
    this.shared.start(signal);
  }

  /** Waits for this controller's informers only (the whole factory's would defeat the gate). */
  waitForCacheSync(signal: AbortSignal): Promise<boolean> {
    return pollUntil(
      () => this.used.every((i) => i.hasSynced()),
      signal,
      this.clock,
      CACHE_SYNC_POLL_MS,
      this.used,
    );
  }
}

/**
 * - `syncing`: informers still listing (or failing in a way that may pass, e.g. a timeout);
 * - `unserved`: an informer's list gets 404: the API server does not serve the resource (a CRD
 *   not installed, an API group not enabled). The controller waits without failing /readyz,
 *   and starts by itself once the API appears (the reflector keeps retrying with backoff);
 * - `blocked`: an informer fails for another reason (Forbidden, ...): /readyz fails;
 * - `synced`: the workers run.
 */
export type CacheSyncPhase = 'syncing' | 'unserved' | 'blocked' | 'synced';

export interface CacheSyncGateOptions {
  clock: Clock;
  logger: Logger;
  pollMs?: number;
}

export class CacheSyncGate {
  phase: CacheSyncPhase = 'syncing';
  /** Why the controller waits, e.g. "x waits for g/v r: the API server does not serve it (...)". */
  reason: string | undefined;

  constructor(
    readonly controller: string,
    private readonly informers: readonly SharedIndexInformer[],
    private readonly opts: CacheSyncGateOptions,
  ) {}

  /** Resolves true once every informer has synced, false if `signal` aborts first. */
  async wait(signal: AbortSignal): Promise<boolean> {
    const { logger } = this.opts;
    logger.info('waiting for caches to sync', { controller: this.controller });
    const ok = await pollUntil(
      () => this.observe(),
      signal,
      this.opts.clock,
      this.opts.pollMs ?? CACHE_SYNC_POLL_MS,
      this.informers,
    );
    if (ok) logger.info('caches are synced', { controller: this.controller });
    return ok;
  }

  /** One poll: update phase/reason, log a line only when they change. True once all synced. */
  private observe(): boolean {
    const pending = this.informers.filter((i) => !i.hasSynced());
    if (pending.length === 0) {
      this.phase = 'synced';
      this.reason = undefined;
      return true;
    }
    let phase: CacheSyncPhase = 'syncing';
    const why: string[] = [];
    for (const informer of pending) {
      const err = informer.syncError?.();
      if (err === undefined) continue;
      const api = `${apiVersion(informer.ref)} ${informer.ref.resource}`;
      if (isNotFound(err)) {
        if (phase === 'syncing') phase = 'unserved';
        why.push(`${api}: the API server does not serve it (${servedHint(informer.ref)})`);
      } else {
        phase = 'blocked';
        const hint = isForbidden(err) ? ' (check the RBAC rules)' : '';
        why.push(`${api}: ${errorMessage(err)}${hint}`);
      }
    }
    const reason = why.length ? `${this.controller} waits for ${why.join('; ')}` : undefined;
    if (phase !== this.phase || reason !== this.reason) {
      this.phase = phase;
      this.reason = reason;
      if (reason && phase === 'unserved') this.opts.logger.info(reason, { controller: this.controller });
      else if (reason) this.opts.logger.warn(reason, { controller: this.controller });
    }
    return false;
  }
}

function apiVersion(ref: ResourceRef): string {
  return ref.group ? `${ref.group}/${ref.version}` : ref.version;
}

/** Built-in groups are enabled on the apiserver; anything else is usually a CRD. */
function servedHint(ref: ResourceRef): string {
  const builtIn = ref.group === '' || !ref.group.includes('.') || ref.group.endsWith('.k8s.io');
  return builtIn ? 'is the API version enabled on the apiserver?' : 'is the CRD installed?';
}

/**
 * Checks `done` now and then every `everyMs` until it holds (true) or `signal` aborts (false).
 * It also checks the moment one of `informers` says it synced (whenSynced), so a controller
 * does not idle up to a poll period between its last informer's list and its workers — the
 * client-go poll costs KCM that at every start; the poll stays for the phase and reason.
 */
function pollUntil(
  done: () => boolean,
  signal: AbortSignal,
  clock: Clock,
  everyMs: number,
  informers: readonly SharedIndexInformer[] = [],
): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    if (done()) return resolve(true);
    let timer: { cancel(): void } | undefined;
    let settled = false;
    const finish = (ok: boolean) => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      signal.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = () => finish(false);
    const check = () => {
      if (settled || signal.aborted) return;
      if (done()) finish(true);
    };
    const tick = () => {
      check();
      if (!settled && !signal.aborted) timer = clock.setTimer(everyMs, tick);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    timer = clock.setTimer(everyMs, tick);
    for (const informer of informers) void informer.whenSynced?.().then(check);
  });
}
