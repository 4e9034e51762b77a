/**
 * The ResourceClaim controller (kube-controller-manager's `resourceclaim-controller`).
 *
 * Event handlers only enqueue keys: `pod:<ns>/<name>` when a pod needs claims created or
 * reserved, `claim:<ns>/<name>` when a claim's reservations may be stale. Workers call
 * `reconcile`, which dispatches to syncPod or syncClaim. Everything is read from informer
 * caches, except a live GET of a pod before dropping its reservation (a pod the cache has
 * not seen yet may be in the middle of being scheduled).
 *
 * Writes and why they look the way they do (README.md has the full table):
 * - claims are created from templates (POST) and deleted when their pod is done (DELETE);
 * - the pod status entries are published with server-side apply, guarded by the pod UID;
 * - adding a reservation is a strategic-merge patch of `status.reservedFor` (merged by uid,
 *   guarded by the claim UID) so many pods can add themselves at once without a fresh copy;
 * - removing reservations, clearing the allocation and dropping the finalizer are PUTs that
 *   carry the resourceVersion, so a concurrent addition makes them fail and retry instead
 *   of being overwritten.
 */
import { LRUCache } from 'lru-cache';
import type {
  Pod,
  PodResourceClaim,
  ResourceClaim,
  ResourceClaimConsumerReference,
  ResourceClaimTemplate,
} from '../../lib/api/index.js';
import { ApiError, Resources, isNotFound } from '../../lib/client/index.js';
import type { KubeClient, ResourceClient } from '../../lib/client/index.js';
import type { Clock } from '../../lib/clock/index.js';
import type { Reconciler } from '../../lib/controller/index.js';
import type { EventRecorder } from '../../lib/events/index.js';
import { DeletedFinalStateUnknown } from '../../lib/informer/index.js';
import type { IndexFunc, Indexer, SharedIndexInformer } from '../../lib/informer/index.js';
import type { Logger } from '../../lib/log/index.js';
import { errorMessage } from '../../lib/log/index.js';
import type { Registry } from '../../lib/metrics/index.js';
import type { RateLimitingQueue } from '../../lib/workqueue/index.js';
import { newResourceClaimMetrics } from './metrics.js';
import type { ResourceClaimMetrics } from './metrics.js';
import { MutationCache } from './mutation-cache.js';
import {
  ClaimNotCreatedError,
  DELETE_PROTECTION_FINALIZER,
  POD_CLAIM_NAME_ANNOTATION,
  canBeReserved,
  claimGenerateName,
  controllingPodUID,
  extendedResourceClaimName,
  isAllocated,
  isPodDone,
  isReservedForPod,
  notOwnedError,
  podDoneReason,
  resolveClaimName,
  specNeedsAdminAccess,
  tryResolveClaimName,
} from './names.js';

export const CONTROLLER_NAME = 'resourceclaim-controller';
export const QUEUE_NAME = 'resource_claim';
export const EVENT_COMPONENT = 'resource_claim';
export const FIELD_MANAGER = 'ResourceClaimController';
export const POD_KEY_PREFIX = 'pod:';
export const CLAIM_KEY_PREFIX = 'claim:';
export const PODS_BY_CLAIM_INDEX = 'pod-resource-claim-index';
export const CLAIMS_BY_POD_OWNER_INDEX = 'claim-pod-owner-index';
export const FAILED_CLAIM_CREATION_REASON = 'FailedResourceClaimCreation';
/** Same bound as upstream: enough to remember every pod finished between two syncs of a busy claim. */
export const FINISHED_PODS_REMEMBERED = 500;

/** Index value: `<ns>/<claim>` for each pod claim whose name is known. */
export const podsByClaim: IndexFunc<Pod> = (pod) => {
  const out: string[] = [];
  for (const podClaim of pod.spec?.resourceClaims ?? []) {
    const resolved = tryResolveClaimName(pod, podClaim);
    if (resolved?.name) out.push(`${pod.metadata.namespace}/${resolved.name}`);
  }
  return out;
};

/** Index value: the UID of the Pod controlling the claim. */
export const claimsByPodOwner: IndexFunc<ResourceClaim> = (claim) => {
  const uid = controllingPodUID(claim);
  return uid ? [uid] : [];
};

export interface ResourceClaimControllerOptions {
  client: KubeClient;
  podInformer: SharedIndexInformer<Pod>;
  claimInformer: SharedIndexInformer<ResourceClaim>;
  templateInformer: SharedIndexInformer<ResourceClaimTemplate>;
  queue: RateLimitingQueue<string>;
  recorder: EventRecorder;
  logger: Logger;
  registry: Registry;
  clock: Clock;
}

/** What syncPod decided for one pod claim before writing anything. */
type ClaimStep =
  | { kind: 'nothing' }
  | { kind: 'reuse'; podClaim: PodResourceClaim; claim: ResourceClaim }
  | { kind: 'create'; podClaim: PodResourceClaim; template: ResourceClaimTemplate };

export class ResourceClaimController implements Reconciler {
  private readonly pods: Indexer<Pod>;
  private readonly templates: Indexer<ResourceClaimTemplate>;
  private readonly claimInformerCache: Indexer<ResourceClaim>;
  /** Claims by key and owner, including the ones we created that the informer has not delivered yet. */
  readonly claimCache: MutationCache<ResourceClaim>;
  private readonly podClient: ResourceClient<Pod>;
  private readonly claimClient: ResourceClient<ResourceClaim>;
  private readonly queue: RateLimitingQueue<string>;
  private readonly recorder: EventRecorder;
  private readonly logger: Logger;
  private readonly metrics: ResourceClaimMetrics;
  /**
   * UIDs of pods that will never run again: seen deleted, or found done, gone or replaced when
   * their reservation was dropped. Their reservations go without asking the apiserver, and they
   * are never reserved again — even when the pod cache, behind the live GET that found one
   * done, still shows it running (a lagging pod watch delivers the older versions later).
   */
  private readonly finishedPods = new LRUCache<string, true>({ max: FINISHED_PODS_REMEMBERED });
  /**
   * `<pod uid>/<pod claim>` whose last create failed without a clear refusal (no answer, or a
   * 5xx): the claim may exist although neither cache has it. The retry asks the apiserver first
   * instead of creating a second claim.
   */
  private readonly uncertainCreates = new LRUCache<string, true>({ max: FINISHED_PODS_REMEMBERED });

  constructor(opts: ResourceClaimControllerOptions) {
    this.queue = opts.queue;
    this.recorder = opts.recorder;
    this.logger = opts.logger;
    this.podClient = opts.client.resource<Pod>(Resources.pods);
    this.claimClient = opts.client.resource<ResourceClaim>(Resources.resourceClaims);
    this.pods = opts.podInformer.getIndexer();
    this.templates = opts.templateInformer.getIndexer();
    this.claimInformerCache = opts.claimInformer.getIndexer();

    opts.podInformer.addIndexers({ [PODS_BY_CLAIM_INDEX]: podsByClaim });
    const claimIndexes = { [CLAIMS_BY_POD_OWNER_INDEX]: claimsByPodOwner };
    opts.claimInformer.addIndexers(claimIndexes);
    this.claimCache = new MutationCache(this.claimInformerCache, claimIndexes, opts.clock);
    this.metrics = newResourceClaimMetrics(opts.registry, () => this.claimInformerCache.list());

    opts.podInformer.addEventHandler({
      onAdd: (pod) => this.podChanged(pod, false),
      onUpdate: (_old, pod) => this.podChanged(pod, false),
      onDelete: (obj) => this.podChanged(obj instanceof DeletedFinalStateUnknown ? obj.obj : obj, true),
    });
    // The claim dumps are upstream's V(6) lines (kubernetes pkg/controller/resourceclaim/controller.go).
    const v6 = this.logger.v(6);
    opts.claimInformer.addEventHandler({
      onAdd: (claim) => {
        v6.info('new claim', { claimDump: claim });
        this.claimChanged(claim, false);
      },
      onUpdate: (_old, claim) => {
        v6.info('updated claim', { claimDump: claim });
        this.claimChanged(claim, false);
      },
      onDelete: (obj) => {
        const claim = obj instanceof DeletedFinalStateUnknown ? obj.obj : obj;
        v6.info('deleted claim', { claimDump: claim });
        this.claimChanged(claim, true);
      },
    });
  }

  // ---- event handlers: decide which keys need work, nothing else ----

  // The handlers' V(6) lines carry upstream's messages (kubernetes
  // pkg/controller/resourceclaim/controller.go), so `-v 6` traces why a key was queued.

  podChanged(pod: Pod, deleted: boolean): void {
    // The scheduler's claim for extended resources is only in the pod status, not in the spec.
    const extendedClaim = extendedResourceClaimName(pod);
    if (!pod.spec?.resourceClaims?.length && !extendedClaim) return;
    const ns = pod.metadata.namespace ?? '';
    const podRef = `${ns}/${pod.metadata.name}`;
    const v6 = this.logger.v(6);
    if (deleted) {
      v6.info('pod got deleted', { pod: podRef });
      if (pod.metadata.uid) this.finishedPods.set(pod.metadata.uid, true);
    }
    v6.info('pod with resource claims changed', { pod: podRef, deleted });

    // A pod that is done releases its claims: their reservations need checking.
    const doneReason = podDoneReason(pod, deleted);
    if (doneReason) {
      const names = new Set<string>();
      for (const podClaim of pod.spec?.resourceClaims ?? []) {
        const resolved = tryResolveClaimName(pod, podClaim);
        if (!resolved?.name) {
          v6.info('Nothing to do for claim during pod change', {
            pod: podRef,
            podClaim: podClaim.name,
            reason: doneReason,
          });
          continue;
        }
        names.add(resolved.name);
      }
      if (extendedClaim) {
        v6.info('Process extended resource claim', {
          pod: podRef,
          claim: `${ns}/${extendedClaim}`,
          reason: doneReason,
        });
        names.add(extendedClaim);
      }
      // Also claims it owns that its status does not name: a second claim created when the
      // response to the first create was lost (a retry cannot know it landed). Nothing else
      // would bring them back to syncClaim, which deletes the claims of a done pod.
      for (const claim of this.claimCache.byIndex(CLAIMS_BY_POD_OWNER_INDEX, pod.metadata.uid ?? ''))
        if (claim.metadata.namespace === ns && claim.metadata.name) names.add(claim.metadata.name);
      for (const name of names) {
        const key = `${CLAIM_KEY_PREFIX}${ns}/${name}`;
        v6.info('Process claim', { pod: podRef, claim: `${ns}/${name}`, key, reason: doneReason });
        this.queue.add(key);
      }
    } else v6.info('Not touching claims', { pod: podRef, reason: 'pod is not done' });
    if (deleted) return;
    if (this.podNeedsWork(pod)) {
      v6.info('enqueing pod', { pod: podRef, reason: 'a claim to create or reserve' });
      this.queue.add(`${POD_KEY_PREFIX}${podRef}`);
    } else v6.info('not enqueing pod', { pod: podRef, reason: 'no claim to create or reserve' });
  }

  claimChanged(claim: ResourceClaim, deleted: boolean): void {
    const key = `${claim.metadata.namespace}/${claim.metadata.name}`;
    const v6 = this.logger.v(6);
    // A new or changed claim may hold reservations of pods that are already gone.
    if (!deleted) {
      v6.info('enqueing new or updated claim', { claim: key, key: CLAIM_KEY_PREFIX + key });
      this.queue.add(CLAIM_KEY_PREFIX + key);
    } else {
      v6.info('not enqueing deleted claim', { claim: key });
      this.claimCache.deleted(claim);
    }
    const pods = this.pods.byIndex(PODS_BY_CLAIM_INDEX, key);
    if (pods.length === 0) v6.info('unrelated to any known pod', { claim: key });
    for (const pod of pods) this.podChanged(pod, false);
  }

  /** Whether a pod has a claim to create, or (once scheduled) an allocated claim to reserve. */
  private podNeedsWork(pod: Pod): boolean {
    // A done pod must never be (re)reserved: its reservation is being removed.
    if (pod.metadata.deletionTimestamp || isPodDone(pod) || this.isFinished(pod)) return false;
    for (const podClaim of pod.spec?.resourceClaims ?? []) {
      const resolved = tryResolveClaimName(pod, podClaim);
      if (!resolved) return true; // not created yet, or an API we do not know: syncPod reports it
      if (resolved.name === null) continue; // judged "not needed"
      const claim = this.claimCache.get(`${pod.metadata.namespace}/${resolved.name}`);
      if (!claim) {
        if (podClaim.resourceClaimTemplateName) return true;
        continue; // the user has to create it
      }
      // Someone else's claim under our entry: nothing to do until that claim is gone (as
      // upstream). A retry already queued for the pod may still replace it in syncPod.
      if (resolved.checkOwner && notOwnedError(pod, claim)) return false;
      if (pod.spec?.nodeName && isAllocated(claim) && !isReservedForPod(pod, claim) && canBeReserved(claim))
        return true;
    }
    return false;
  }

  // ---- workers ----

  /** `signal` (lost Lease, shutdown budget spent) goes into every client call, cancelling it. */
  async reconcile(key: string, signal?: AbortSignal): Promise<void> {
    const sep = key.indexOf(':');
    const prefix = key.slice(0, sep + 1);
    const [namespace, name, extra] = key.slice(sep + 1).split('/');
    if (sep < 0 || !namespace || !name || extra !== undefined)
      throw new Error(`unexpected key ${JSON.stringify(key)}`);
    if (prefix === POD_KEY_PREFIX) return this.syncPod(namespace, name, signal);
    if (prefix === CLAIM_KEY_PREFIX) return this.syncClaim(namespace, name, signal);
    throw new Error(`unexpected key prefix in ${JSON.stringify(key)}`);
  }

  /** Create the pod's claims from templates, publish them in the pod status, reserve allocated ones. */
  async syncPod(namespace: string, name: string, signal?: AbortSignal): Promise<void> {
    const log = this.logger.child({ pod: `${namespace}/${name}` });
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) return log.v(5).info('nothing to do for pod, it is gone');
    if (pod.metadata.deletionTimestamp)
      return log.v(5).info('nothing to do for pod, it is marked for deletion');
    // Creating or reserving claims for a pod that will not run again would only undo syncClaim.
    if (isPodDone(pod) || this.isFinished(pod)) return log.v(5).info('nothing to do for pod, it is done');

    // 1. Decide for every pod claim, reading caches only. A template or validation
    //    problem stops the attempt here, before anything was written.
    const steps: ClaimStep[] = [];
    for (const podClaim of pod.spec?.resourceClaims ?? []) {
      try {
        steps.push(await this.planClaim(pod, podClaim, log, signal));
      } catch (err) {
        throw this.claimCreationFailed(pod, podClaim, err);
      }
    }

    // 2. Create what is missing. Claims created here are remembered for a rollback.
    const created: ResourceClaim[] = [];
    const statuses: { name: string; resourceClaimName: string }[] = [];
    for (const step of steps) {
      if (step.kind === 'nothing') continue;
      let claim = step.kind === 'reuse' ? step.claim : undefined;
      if (step.kind === 'create') {
        try {
          claim = await this.createClaim(pod, step.podClaim, step.template, signal);
        } catch (err) {
          // Claims created before this one stay: they are owned and annotated, so the
          // retry finds them through the owner index instead of creating them again.
          throw this.claimCreationFailed(pod, step.podClaim, err);
        }
        created.push(claim);
        log.v(4).info('created ResourceClaim', { claim: claim.metadata.name, podClaim: step.podClaim.name });
      }
      statuses.push({ name: step.podClaim.name, resourceClaimName: claim!.metadata.name! });
    }

    // 3. Publish them; if this pod instance is gone, take back what step 2 created.
    let current = pod;
    if (statuses.length > 0) {
      const desired = desiredClaimStatuses(pod, statuses);
      const published = await this.publishClaimStatuses(pod, desired, created, log, signal);
      if (!published) return;
      current = { ...pod, status: { ...(pod.status ?? {}), resourceClaimStatuses: desired } };
    }

    // 4. A pod created with spec.nodeName skips the scheduler: reserve its claims here.
    if (!current.spec?.nodeName) return;
    for (const podClaim of current.spec.resourceClaims ?? []) {
      const resolved = resolveClaimName(current, podClaim);
      if (resolved.name === null) continue;
      const claim = this.claimCache.get(`${namespace}/${resolved.name}`);
      if (!claim) continue; // a user claim not created yet; its add event brings us back
      if (resolved.checkOwner) {
        const notOwned = notOwnedError(current, claim);
        if (notOwned) throw notOwned;
      }
      if (isAllocated(claim) && !isReservedForPod(current, claim) && canBeReserved(claim)) {
        log.v(5).info('reserve claim for pod', { claim: claim.metadata.name });
        await this.reserveForPod(current, claim, signal);
      }
    }
  }

  private async planClaim(
    pod: Pod,
    podClaim: PodResourceClaim,
    log: Logger,
    signal?: AbortSignal,
  ): Promise<ClaimStep> {
    let resolvedName: string | null | undefined;
    let checkOwner = false;
    try {
      ({ name: resolvedName, checkOwner } = resolveClaimName(pod, podClaim));
    } catch (err) {
      if (!(err instanceof ClaimNotCreatedError))
        throw new Error(`checking for claim before creating it: ${errorMessage(err)}`, { cause: err });
    }
    if (resolvedName === null) return { kind: 'nothing' }; // not needed
    if (resolvedName) {
      const existing = this.claimCache.get(`${pod.metadata.namespace}/${resolvedName}`);
      if (existing) {
        const notOwned = checkOwner ? notOwnedError(pod, existing) : undefined;
        if (!notOwned) return { kind: 'nothing' };
        log.error('claim that was created for the pod is no longer owned by the pod, creating a new one', {
          claim: resolvedName,
          error: notOwned.message,
        });
      }
      // Recorded but missing (deleted by someone): a template claim is created again.
    }
    const templateName = podClaim.resourceClaimTemplateName;
    if (!templateName) return { kind: 'nothing' };

    // An earlier attempt may have created the claim and then failed to publish it.
    const orphan = this.claimCache
      .byIndex(CLAIMS_BY_POD_OWNER_INDEX, pod.metadata.uid ?? '')
      .find((c) => c.metadata.annotations?.[POD_CLAIM_NAME_ANNOTATION] === podClaim.name);
    if (orphan) return { kind: 'reuse', podClaim, claim: orphan };
    const landed = await this.claimOfUncertainCreate(pod, podClaim, signal);
    if (landed) return { kind: 'reuse', podClaim, claim: landed };

    const template = this.templates.get(`${pod.metadata.namespace}/${templateName}`);
    if (!template)
      throw new Error(
        `resource claim template "${templateName}": resourceclaimtemplate.resource.k8s.io "${templateName}" not found`,
      );
    return { kind: 'create', podClaim, template };
  }

  /** After a create that may have landed unseen: the claim it made, from a live LIST. */
  private async claimOfUncertainCreate(
    pod: Pod,
    podClaim: PodResourceClaim,
    signal?: AbortSignal,
  ): Promise<ResourceClaim | undefined> {
    const key = `${pod.metadata.uid}/${podClaim.name}`;
    if (!this.uncertainCreates.has(key)) return undefined;
    const live = await this.claimClient.list({ namespace: pod.metadata.namespace, signal });
    this.uncertainCreates.delete(key);
    const landed = live.items.find(
      (c) =>
        controllingPodUID(c) === pod.metadata.uid &&
        c.metadata.annotations?.[POD_CLAIM_NAME_ANNOTATION] === podClaim.name &&
        !c.metadata.deletionTimestamp,
    );
    if (landed) this.claimCache.mutation(landed);
    return landed;
  }

  private async createClaim(
    pod: Pod,
    podClaim: PodResourceClaim,
    template: ResourceClaimTemplate,
    signal?: AbortSignal,
  ): Promise<ResourceClaim> {
    const meta = template.spec.metadata ?? {};
    const claim: ResourceClaim = {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceClaim',
      metadata: {
        generateName: claimGenerateName(pod.metadata.name ?? '', podClaim.name),
        namespace: pod.metadata.namespace,
        ownerReferences: [
          {
            apiVersion: 'v1',
            kind: 'Pod',
            name: pod.metadata.name ?? '',
            uid: pod.metadata.uid ?? '',
            controller: true,
          },
        ],
        annotations: { ...(meta.annotations ?? {}), [POD_CLAIM_NAME_ANNOTATION]: podClaim.name },
        ...(meta.labels ? { labels: { ...meta.labels } } : {}),
      },
      spec: structuredClone(template.spec.spec),
    };
    const adminAccess = specNeedsAdminAccess(template.spec.spec);
    let result: ResourceClaim;
    try {
      result = await this.claimClient.create(claim, { namespace: pod.metadata.namespace, signal });
    } catch (err) {
      this.metrics.recordCreate(false, adminAccess);
      if (!(err instanceof ApiError && err.code < 500))
        this.uncertainCreates.set(`${pod.metadata.uid}/${podClaim.name}`, true);
      throw new Error(`create ResourceClaim ${claim.metadata.generateName}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    this.metrics.recordCreate(true, adminAccess);
    this.claimCache.mutation(result);
    return result;
  }

  /**
   * Server-side apply of every status entry we stand for, guarded by the pod UID: a pod deleted or
   * replaced under the same name fails the write. In that case the claims created in this
   * attempt belong to nobody and are deleted again. Returns false after such a rollback.
   */
  private async publishClaimStatuses(
    pod: Pod,
    statuses: { name: string; resourceClaimName: string }[],
    created: ResourceClaim[],
    log: Logger,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const { name, namespace, uid } = pod.metadata;
    const body = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, uid },
      status: { resourceClaimStatuses: statuses },
    };
    try {
      await this.podClient.patch(name ?? '', body, {
        type: 'apply',
        subresource: 'status',
        namespace,
        fieldManager: FIELD_MANAGER,
        force: true,
        signal,
      });
      return true;
    } catch (err) {
      const message = `update pod ${namespace}/${name} ResourceClaimStatuses: ${errorMessage(err)}`;
      if (created.length === 0 || !(await this.podInstanceGone(pod, err, signal)))
        throw new Error(message, { cause: err });
      for (const claim of created) {
        try {
          await this.claimClient.delete(claim.metadata.name ?? '', {
            namespace,
            preconditions: { uid: claim.metadata.uid },
            signal,
          });
        } catch (deleteErr) {
          if (!isNotFound(deleteErr))
            throw new Error(
              `${message}; rolling back ResourceClaim ${claim.metadata.name}: ${errorMessage(deleteErr)}`,
              { cause: deleteErr },
            );
        }
      }
      log.v(4).info('pod is gone or was replaced; deleted the ResourceClaims created for it', {
        claims: created.map((c) => c.metadata.name),
        error: errorMessage(err),
      });
      return false;
    }
  }

  /** Whether the pod instance we worked for no longer exists (deleted, or replaced by another UID). */
  private async podInstanceGone(pod: Pod, writeErr: unknown, signal?: AbortSignal): Promise<boolean> {
    if (isNotFound(writeErr)) return true;
    try {
      const live = await this.podClient.get(pod.metadata.name ?? '', pod.metadata.namespace, { signal });
      return live.metadata.uid !== pod.metadata.uid;
    } catch (err) {
      if (isNotFound(err)) return true;
      return false; // unknown: keep the claims, the retry finds them by owner and annotation
    }
  }

  /**
   * Add the pod to `status.reservedFor` with a strategic-merge patch: the list merges by
   * uid, so concurrent additions for other pods are kept without reading the claim first.
   * metadata.uid makes the apiserver refuse the patch if the claim was replaced.
   */
  private async reserveForPod(pod: Pod, claim: ResourceClaim, signal?: AbortSignal): Promise<void> {
    const entry: ResourceClaimConsumerReference = {
      resource: 'pods',
      name: pod.metadata.name ?? '',
      uid: pod.metadata.uid ?? '',
    };
    const patch = { metadata: { uid: claim.metadata.uid }, status: { reservedFor: [entry] } };
    try {
      await this.claimClient.patch(claim.metadata.name ?? '', patch, {
        type: 'strategic',
        subresource: 'status',
        namespace: claim.metadata.namespace,
        signal,
      });
    } catch (err) {
      throw new Error(
        `reserve claim ${claim.metadata.namespace}/${claim.metadata.name} for pod: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }

  /** Record the Warning event on the pod and return the error the worker logs and retries. */
  private claimCreationFailed(pod: Pod, podClaim: PodResourceClaim, err: unknown): Error {
    this.recorder.event(
      pod,
      'Warning',
      FAILED_CLAIM_CREATION_REASON,
      'CreateResourceClaim',
      `PodResourceClaim ${podClaim.name}: ${errorMessage(err)}`,
    );
    return new Error(
      `pod ${pod.metadata.namespace}/${pod.metadata.name}, PodResourceClaim ${podClaim.name}: ${errorMessage(err)}`,
      { cause: err },
    );
  }

  /** Drop stale reservations, deallocate when the last consumer left, delete claims of done pods. */
  async syncClaim(namespace: string, name: string, signal?: AbortSignal): Promise<void> {
    const log = this.logger.child({ claim: `${namespace}/${name}` });
    const claim = this.claimInformerCache.get(`${namespace}/${name}`);
    if (!claim) return log.v(5).info('nothing to do for claim, it is gone');

    const reservedFor = claim.status?.reservedFor ?? [];
    const kept: ResourceClaimConsumerReference[] = [];
    const unsupported: ResourceClaimConsumerReference[] = [];
    for (const entry of reservedFor) {
      if ((entry.apiGroup ?? '') !== '' || entry.resource !== 'pods') {
        // Someone else's consumer: we cannot judge it, so it stays (and keeps the claim allocated).
        unsupported.push(entry);
        kept.push(entry);
      } else if (await this.podStillUsesClaim(namespace, entry, log, signal)) {
        kept.push(entry);
      }
    }

    const hasFinalizer = (claim.metadata.finalizers ?? []).includes(DELETE_PROTECTION_FINALIZER);
    if (kept.length < reservedFor.length) {
      const updated = structuredClone(claim);
      updated.status = { ...(updated.status ?? {}), reservedFor: kept };
      // Deallocate on the transition "was in use" -> "unused" only: a driver may allocate
      // without reserving, and such a claim must stay allocated.
      if (kept.length === 0 && hasFinalizer) delete updated.status.allocation;
      const written = await this.claimClient.update(updated, { namespace, subresource: 'status', signal });
      log.v(5).info('removed stale reservations', {
        removed: reservedFor.length - kept.length,
        remaining: kept.length,
      });
      if (!isAllocated(written)) await this.removeFinalizer(written, signal);
    } else if (hasFinalizer && claim.metadata.deletionTimestamp && kept.length === 0) {
      let current = claim;
      if (isAllocated(current)) {
        const updated = structuredClone(current);
        delete updated.status!.allocation;
        current = await this.claimClient.update(updated, { namespace, subresource: 'status', signal });
      }
      await this.removeFinalizer(current, signal);
    }

    if (kept.length === 0) await this.deleteIfPodDone(claim, log, signal);
    if (unsupported.length > 0)
      throw new Error(`unsupported ReservedFor entry: ${JSON.stringify(unsupported[0])}`);
  }

  /** A reservation stays while its pod exists with that UID and may still run. */
  private async podStillUsesClaim(
    namespace: string,
    entry: ResourceClaimConsumerReference,
    log: Logger,
    signal?: AbortSignal,
  ): Promise<boolean> {
    if (this.finishedPods.has(entry.uid)) return false;
    const keep = await this.podStillRuns(namespace, entry, log, signal);
    if (!keep) this.finishedPods.set(entry.uid, true);
    return keep;
  }

  /** Whether the pod in the cache is one we know finished (see finishedPods). */
  private isFinished(pod: Pod): boolean {
    return pod.metadata.uid !== undefined && this.finishedPods.has(pod.metadata.uid);
  }

  private async podStillRuns(
    namespace: string,
    entry: ResourceClaimConsumerReference,
    log: Logger,
    signal?: AbortSignal,
  ): Promise<boolean> {
    let pod = this.pods.get(`${namespace}/${entry.name}`);
    if (!pod) {
      // Not in the cache yet is not proof of absence: the scheduler may have reserved the
      // claim for a pod whose add event we have not received. Ask the apiserver.
      try {
        pod = await this.podClient.get(entry.name, namespace, { signal });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        log.v(6).info('remove reservation because pod is gone', { pod: entry.name });
        return false;
      }
    }
    if (pod.metadata.uid !== entry.uid) {
      log.v(6).info('remove reservation because pod got replaced with new instance', { pod: entry.name });
      return false;
    }
    if (isPodDone(pod)) {
      log.v(6).info('remove reservation because pod will not run anymore', {
        pod: entry.name,
        reason: podDoneReason(pod),
      });
      return false;
    }
    return true;
  }

  private async removeFinalizer(claim: ResourceClaim, signal?: AbortSignal): Promise<void> {
    const finalizers = claim.metadata.finalizers ?? [];
    if (!finalizers.includes(DELETE_PROTECTION_FINALIZER)) return;
    const updated = structuredClone(claim);
    updated.metadata.finalizers = finalizers.filter((f) => f !== DELETE_PROTECTION_FINALIZER);
    await this.claimClient.update(updated, { namespace: claim.metadata.namespace, signal });
  }

  /** A generated claim goes when its pod is done; a pod missing from the cache is the garbage collector's case. */
  private async deleteIfPodDone(claim: ResourceClaim, log: Logger, signal?: AbortSignal): Promise<void> {
    const owner = claim.metadata.ownerReferences?.find(
      (r) => r.controller === true && r.apiVersion === 'v1' && r.kind === 'Pod',
    );
    if (!owner || claim.metadata.deletionTimestamp) return; // not generated, or already going
    const pod = this.pods.get(`${claim.metadata.namespace}/${owner.name}`);
    if (!pod || (pod.metadata.uid === owner.uid && !isPodDone(pod))) return;
    log.v(5).info('deleting unused generated claim', { pod: owner.name });
    try {
      await this.claimClient.delete(claim.metadata.name ?? '', {
        namespace: claim.metadata.namespace,
        preconditions: { uid: claim.metadata.uid },
        signal,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

/**
 * The whole list our field manager applies: the entries already recorded with a claim name,
 * overridden by the new ones, sorted by pod claim name. Server-side apply removes entries
 * this manager applied before and omits now, so applying only the new entries would drop
 * the others (and the next sync would put them back, dropping these: a loop). Entries with
 * a null name are left out, as upstream does after 1.35 (ADR 9).
 */
export function desiredClaimStatuses(
  pod: Pod,
  updates: { name: string; resourceClaimName: string }[],
): { name: string; resourceClaimName: string }[] {
  const merged = new Map<string, string>();
  for (const s of pod.status?.resourceClaimStatuses ?? [])
    if (s.resourceClaimName) merged.set(s.name, s.resourceClaimName);
  for (const s of updates) merged.set(s.name, s.resourceClaimName);
  return [...merged.keys()]
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => ({ name, resourceClaimName: merged.get(name)! }));
}
