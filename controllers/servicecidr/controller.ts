/**
 * ServiceCIDRController protects ServiceCIDRs (networking.k8s.io/v1) that Service IPs still
 * depend on. Every ServiceCIDR gets a finalizer and a Ready condition; when one is deleted,
 * the finalizer stays until no allocated IPAddress would be left outside every remaining
 * range, and in any case until a grace period after the deletion was requested, so that
 * every apiserver's allocator has heard of the deletion before the object disappears.
 *
 * Reads come only from the informer caches; event handlers only enqueue ServiceCIDR names.
 * Behaviour follows upstream kube-controller-manager's service-cidr-controller
 * (pkg/controller/servicecidrs), see /work/shared/specs/servicecidr-controller.md.
 */
import {
  formatTime,
  parseTime,
  type Condition,
  type IPAddress,
  type ServiceCIDR,
} from '../../lib/api/index.js';
import { isNotFound, Resources, type KubeClient, type ResourceClient } from '../../lib/client/index.js';
import type { Clock } from '../../lib/clock/index.js';
import type { Reconciler, ReconcileResult } from '../../lib/controller/index.js';
import type { EventRecorder } from '../../lib/events/index.js';
import {
  DeletedFinalStateUnknown,
  type Indexer,
  type SharedIndexInformer,
} from '../../lib/informer/index.js';
import { errorMessage, type Logger } from '../../lib/log/index.js';
import type { DelayingQueue } from '../../lib/workqueue/index.js';
import {
  parseAddress,
  parsePrefix,
  prefixContainsAddress,
  prefixesOverlap,
  type Address,
  type IPFamily,
  type Prefix,
} from './cidr.js';

export const CONTROLLER_NAME = 'service-cidr-controller';
/** Upstream names its queue after what used to drive it; metrics carry name="ipaddresses". */
export const QUEUE_NAME = 'ipaddresses';
export const SERVICE_CIDR_FINALIZER = 'networking.k8s.io/service-cidr-finalizer';
/** Upstream deletionGracePeriod: time for the deletion to reach every apiserver's allocator. */
export const DELETION_GRACE_PERIOD_MS = 10_000;
/** Upstream maxRetries: with the default limiter the last retry waits about 82 s. */
export const MAX_RETRIES = 15;
/** Upstream runs 5 workers. */
export const DEFAULT_WORKERS = 5;

export const LABEL_MANAGED_BY = 'ipaddress.kubernetes.io/managed-by';
export const LABEL_IP_FAMILY = 'ipaddress.kubernetes.io/ip-family';
/** The managed-by value kube-apiserver's Service IP allocator puts on its IPAddresses. */
export const IP_ALLOCATOR_MANAGER = 'ipallocator.k8s.io';

export const CONDITION_READY = 'Ready';
export const READY_MESSAGE = 'Kubernetes Service CIDR is ready';
export const REASON_TERMINATING = 'Terminating';
export const TERMINATING_MESSAGE =
  'There are still IPAddresses referencing the ServiceCIDR, please remove them or create a new ServiceCIDR';
export const EVENT_REASON_STATUS_ERROR = 'KubernetesServiceCIDRError';
export const EVENT_NOTE_STATUS_ERROR = 'The ServiceCIDR Status can not be set to Ready=True';

/** IPAddresses of the apiserver allocator, indexed by their ip-family label. */
const ALLOCATED_BY_FAMILY_INDEX = 'service-cidr-controller/allocated-ip-family';
/**
 * IPAddresses of the apiserver allocator, indexed by their leading bits (a /16 for IPv4, a /64
 * for IPv6): canDelete looks only at the bucket of a range that long or longer, instead of
 * every allocated IP of the family for every range (O(ranges × IPs) on a mass delete).
 */
const ALLOCATED_BY_BUCKET_INDEX = 'service-cidr-controller/allocated-ip-bucket';
const BUCKET_BITS: Record<IPFamily, number> = { IPv4: 16, IPv6: 64 };
const FAMILY_WIDTH: Record<IPFamily, number> = { IPv4: 32, IPv6: 128 };

/** ServiceCIDRs indexed by each of their prefixes, `IPv4/24/<network hex>`. */
const BY_PREFIX_INDEX = 'service-cidr-controller/prefix';

function prefixKey(family: IPFamily, bits: number, network: bigint): string {
  return `${family}/${bits}/${network.toString(16)}`;
}

/** The keys of every prefix that could contain `value` (lengths 0 to `maxBits`), for BY_PREFIX_INDEX. */
function containingPrefixKeys(family: IPFamily, value: bigint, maxBits: number): string[] {
  const width = FAMILY_WIDTH[family];
  const keys: string[] = [];
  for (let bits = 0; bits <= maxBits; bits++) {
    const hostBits = BigInt(width - bits);
    keys.push(prefixKey(family, bits, (value >> hostBits) << hostBits));
  }
  return keys;
}

function bucketKey(family: IPFamily, value: bigint): string {
  return `${family}/${(value >> BigInt(FAMILY_WIDTH[family] - BUCKET_BITS[family])).toString(16)}`;
}

export interface ServiceCIDRControllerOptions {
  client: KubeClient;
  serviceCIDRInformer: SharedIndexInformer<ServiceCIDR>;
  ipAddressInformer: SharedIndexInformer<IPAddress>;
  /** Where handlers put ServiceCIDR names; the worker runner drains it. */
  queue: DelayingQueue<string>;
  recorder: EventRecorder;
  logger: Logger;
  clock: Clock;
}

interface WantedCondition {
  status: Condition['status'];
  reason: string;
  message: string;
}

export class ServiceCIDRController implements Reconciler {
  private readonly serviceCIDRs: ResourceClient<ServiceCIDR>;
  private readonly cidrCache: Indexer<ServiceCIDR>;
  private readonly ipCache: Indexer<IPAddress>;
  private readonly queue: DelayingQueue<string>;
  private readonly recorder: EventRecorder;
  private readonly logger: Logger;
  private readonly clock: Clock;
  /**
   * Parsed prefixes per cached object. The informer replaces objects on every change, so
   * keying on identity invalidates for free, and a bad CIDR is logged once per version
   * rather than on every IP event that scans the ranges.
   */
  private readonly prefixCache = new WeakMap<ServiceCIDR, Prefix[]>();
  private readonly reportedBadIPs = new WeakSet<IPAddress>();

  constructor(opts: ServiceCIDRControllerOptions) {
    this.serviceCIDRs = opts.client.resource<ServiceCIDR>(Resources.serviceCIDRs);
    this.cidrCache = opts.serviceCIDRInformer.getIndexer();
    this.ipCache = opts.ipAddressInformer.getIndexer();
    this.queue = opts.queue;
    this.recorder = opts.recorder;
    this.logger = opts.logger;
    this.clock = opts.clock;

    try {
      opts.serviceCIDRInformer.addIndexers({ [BY_PREFIX_INDEX]: prefixIndex });
    } catch (err) {
      if (!/already exists/.test(errorMessage(err))) throw err;
    }
    try {
      opts.ipAddressInformer.addIndexers({
        [ALLOCATED_BY_FAMILY_INDEX]: allocatedFamilyIndex,
        [ALLOCATED_BY_BUCKET_INDEX]: allocatedBucketIndex,
      });
    } catch (err) {
      // A second controller on the same factory (tests) finds the index already there.
      if (!/already exists/.test(errorMessage(err))) throw err;
    }

    opts.serviceCIDRInformer.addEventHandler({
      onAdd: (sc) => this.onServiceCIDRAdd(sc),
      onUpdate: (_old, sc) => this.enqueueName(sc),
      onDelete: (obj) => this.enqueueName(obj instanceof DeletedFinalStateUnknown ? obj.obj : obj),
    });
    // IPAddress updates are ignored, as upstream: the name is the IP and never changes, and
    // the allocator sets the labels when it creates the object.
    opts.ipAddressInformer.addEventHandler({
      onAdd: (ip) => this.onIPAddressEvent(ip),
      onDelete: (obj) => this.onIPAddressEvent(obj instanceof DeletedFinalStateUnknown ? obj.obj : obj),
    });
  }

  // ---- event handlers: map an event to ServiceCIDR names, nothing else ----

  private enqueueName(sc: ServiceCIDR | undefined): void {
    const name = sc?.metadata?.name;
    if (name) this.queue.add(name);
  }

  /** A new range can unblock the deletion of any range it covers, so those sync again too. */
  private onServiceCIDRAdd(sc: ServiceCIDR): void {
    this.enqueueName(sc);
    for (const name of this.overlappingServiceCIDRs(sc)) this.queue.add(name);
  }

  /** An allocated IP appearing or going away can block or unblock the ranges holding it. */
  private onIPAddressEvent(ip: IPAddress | undefined): void {
    if (!ip) return;
    for (const name of this.containingServiceCIDRs(ip)) this.queue.add(name);
  }

  /** Names of the cached ServiceCIDRs with a CIDR that contains, or is contained by, one of `sc`'s. */
  overlappingServiceCIDRs(sc: ServiceCIDR): string[] {
    const mine = this.prefixesOf(sc);
    const names = new Set<string>();
    if (mine.length === 0) return [];
    for (const other of this.cidrCache.list()) {
      if (this.prefixesOf(other).some((p) => mine.some((m) => prefixesOverlap(p, m))))
        names.add(nameOf(other));
    }
    return [...names];
  }

  /** Names of the cached ServiceCIDRs that could have allocated `ip`; [] unless the apiserver allocator owns it. */
  containingServiceCIDRs(ip: IPAddress): string[] {
    if (ip.metadata?.labels?.[LABEL_MANAGED_BY] !== IP_ALLOCATOR_MANAGER) return [];
    const address = this.addressOf(ip);
    if (!address) return [];
    return this.serviceCIDRsContaining(address).map(nameOf);
  }

  // ---- sync ----

  /** `signal` (lost Lease, shutdown budget spent) goes into every write, cancelling it. */
  async reconcile(key: string, signal?: AbortSignal): Promise<ReconcileResult | void> {
    return this.sync(key, signal);
  }

  async sync(name: string, signal?: AbortSignal): Promise<ReconcileResult | void> {
    const sc = this.cidrCache.get(name);
    if (!sc) return; // deleted: nothing left to protect

    if (sc.metadata.deletionTimestamp) return this.syncDeleting(sc, signal);

    await this.addFinalizerIfMissing(sc, signal);
    try {
      await this.ensureReadyCondition(sc, { status: 'True', reason: '', message: READY_MESSAGE }, signal);
    } catch (err) {
      // Cancelled (the key moved to another replica, the Lease was lost, shutdown): not a
      // status error of this ServiceCIDR, so no Warning on it.
      if (signal?.aborted) throw err;
      this.logger.info('error updating ServiceCIDR status', { serviceCIDR: name, err: errorMessage(err) });
      this.recorder.event(sc, 'Warning', EVENT_REASON_STATUS_ERROR, 'UpdateStatus', EVENT_NOTE_STATUS_ERROR);
      throw err;
    }
  }

  private async syncDeleting(sc: ServiceCIDR, signal?: AbortSignal): Promise<ReconcileResult | void> {
    if (!this.canDelete(sc)) {
      // No requeue: the IPAddress or ServiceCIDR event that frees this range brings it back.
      await this.ensureReadyCondition(
        sc,
        { status: 'False', reason: REASON_TERMINATING, message: TERMINATING_MESSAGE },
        signal,
      );
      return;
    }
    const remaining = this.remainingGraceMs(sc);
    if (remaining > 0) {
      this.logger.debug('ServiceCIDR can be deleted once the grace period ends', {
        serviceCIDR: nameOf(sc),
        deletionTimestamp: sc.metadata.deletionTimestamp,
        remainingMs: remaining,
      });
      return { requeueAfterMs: remaining };
    }
    await this.removeFinalizerIfPresent(sc, signal);
  }

  /** Time left before the finalizer may go, measured from metadata.deletionTimestamp. */
  remainingGraceMs(sc: ServiceCIDR): number {
    const requested = parseTime(sc.metadata.deletionTimestamp);
    // An unreadable timestamp must not shorten the wait: count it as "just now".
    const since = requested === undefined ? 0 : this.clock.now() - requested;
    return DELETION_GRACE_PERIOD_MS - since;
  }

  /**
   * Whether deleting `sc` leaves no allocated IP outside every other range. Safe when each
   * of its CIDRs sits inside another ServiceCIDR (whatever that one's own state); otherwise
   * safe only if no allocator IP lies in this range and in no other.
   */
  canDelete(sc: ServiceCIDR): boolean {
    const mine = this.prefixesOf(sc);
    const name = nameOf(sc);
    // Another ServiceCIDR holding `address` (or a prefix from `address` on, up to `maxBits`
    // long): looked up by each containing prefix in the index, not by scanning every range.
    const otherContains = (family: IPFamily, value: bigint, maxBits: number) =>
      containingPrefixKeys(family, value, maxBits).some((key) =>
        this.cidrCache.byIndex(BY_PREFIX_INDEX, key).some((o) => nameOf(o) !== name),
      );
    const covered = mine.every((p) => otherContains(p.family, p.network, p.bits));
    if (covered) {
      this.logger.info('ServiceCIDR is covered by other ServiceCIDRs, it can be deleted', {
        serviceCIDR: nameOf(sc),
      });
      return true;
    }

    for (const p of mine) {
      const candidates =
        p.bits >= BUCKET_BITS[p.family]
          ? this.ipCache.byIndex(ALLOCATED_BY_BUCKET_INDEX, bucketKey(p.family, p.network))
          : this.ipCache.byIndex(ALLOCATED_BY_FAMILY_INDEX, p.family);
      for (const ip of candidates) {
        const address = this.addressOf(ip);
        if (!address) continue;
        if (!mine.some((p) => prefixContainsAddress(p, address))) continue;
        if (otherContains(address.family, address.value, FAMILY_WIDTH[address.family])) continue;
        this.logger.info('ServiceCIDR deletion blocked by an IPAddress', {
          serviceCIDR: nameOf(sc),
          ipAddress: nameOf(ip),
        });
        return false;
      }
    }
    this.logger.info('ServiceCIDR holds no IPAddress that only it contains, it can be deleted', {
      serviceCIDR: nameOf(sc),
    });
    return true;
  }

  // ---- writes ----
  //
  // Finalizers go through strategic merge patches, as upstream does: metadata.finalizers
  // merges as a set, so adding ours appends to whatever the server holds at that moment and
  // `$deleteFromPrimitiveList` removes exactly ours. Neither can drop a finalizer another
  // writer added meanwhile, and neither needs a resourceVersion, so there is no conflict to
  // retry. (A JSON merge patch would replace the whole list and need a resourceVersion
  // guard; a JSON patch `remove` needs an index, guarded by a `test` that fails the same way.)

  private async addFinalizerIfMissing(sc: ServiceCIDR, signal?: AbortSignal): Promise<void> {
    if (sc.metadata.finalizers?.includes(SERVICE_CIDR_FINALIZER)) return;
    await this.patchIgnoringNotFound(sc, { metadata: { finalizers: [SERVICE_CIDR_FINALIZER] } }, signal);
    this.logger.v(4).info('added protection finalizer to ServiceCIDR', { serviceCIDR: nameOf(sc) });
  }

  private async removeFinalizerIfPresent(sc: ServiceCIDR, signal?: AbortSignal): Promise<void> {
    if (!sc.metadata.finalizers?.includes(SERVICE_CIDR_FINALIZER)) return;
    await this.patchIgnoringNotFound(
      sc,
      { metadata: { '$deleteFromPrimitiveList/finalizers': [SERVICE_CIDR_FINALIZER] } },
      signal,
    );
    this.logger.v(4).info('removed protection finalizer from ServiceCIDR', { serviceCIDR: nameOf(sc) });
  }

  private async patchIgnoringNotFound(sc: ServiceCIDR, patch: unknown, signal?: AbortSignal): Promise<void> {
    try {
      await this.serviceCIDRs.patch(nameOf(sc), patch, { type: 'strategic', signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Server-side apply of just the Ready condition, under our own field manager, and only
   * when status, reason or message differ: an unchanged condition costs no write (and no
   * update event that would sync the object again).
   */
  private async ensureReadyCondition(
    sc: ServiceCIDR,
    want: WantedCondition,
    signal?: AbortSignal,
  ): Promise<void> {
    const current = sc.status?.conditions?.find((c) => c.type === CONDITION_READY);
    if (
      current &&
      current.status === want.status &&
      (current.reason ?? '') === want.reason &&
      (current.message ?? '') === want.message
    ) {
      return;
    }
    const condition: Condition = {
      type: CONDITION_READY,
      status: want.status,
      reason: want.reason,
      message: want.message,
      lastTransitionTime: formatTime(this.clock.now()),
    };
    const body: ServiceCIDR = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: nameOf(sc) },
      status: { conditions: [condition] },
    };
    this.logger.v(4).info('updating ServiceCIDR condition', {
      serviceCIDR: nameOf(sc),
      status: want.status,
      reason: want.reason,
    });
    await this.serviceCIDRs.patch(nameOf(sc), body, {
      type: 'apply',
      subresource: 'status',
      fieldManager: CONTROLLER_NAME,
      force: true,
      signal,
    });
  }

  // ---- cache helpers ----

  private prefixesOf(sc: ServiceCIDR): Prefix[] {
    let prefixes = this.prefixCache.get(sc);
    if (prefixes) return prefixes;
    prefixes = [];
    for (const text of sc.spec?.cidrs ?? []) {
      const p = parsePrefix(text);
      if (p) prefixes.push(p);
      // The apiserver validates CIDRs, so this is a cache holding something odd: skip it, loudly.
      else
        this.logger.warn('ignoring a ServiceCIDR CIDR that does not parse', {
          serviceCIDR: nameOf(sc),
          cidr: text,
        });
    }
    this.prefixCache.set(sc, prefixes);
    return prefixes;
  }

  private addressOf(ip: IPAddress): Address | undefined {
    const address = parseAddress(nameOf(ip));
    if (!address && !this.reportedBadIPs.has(ip)) {
      this.reportedBadIPs.add(ip);
      this.logger.warn('ignoring an IPAddress whose name is not an IP address', { ipAddress: nameOf(ip) });
    }
    return address;
  }

  private serviceCIDRsContaining(address: Address): ServiceCIDR[] {
    return this.cidrCache
      .list()
      .filter((sc) => this.prefixesOf(sc).some((p) => prefixContainsAddress(p, address)));
  }
}

function nameOf(obj: { metadata?: { name?: string } }): string {
  return obj.metadata?.name ?? '';
}

function prefixIndex(sc: ServiceCIDR): string[] {
  const keys: string[] = [];
  for (const text of sc.spec?.cidrs ?? []) {
    const p = parsePrefix(text);
    if (p) keys.push(prefixKey(p.family, p.bits, p.network));
  }
  return keys;
}

function allocatedBucketIndex(ip: IPAddress): string[] {
  if (allocatedFamilyIndex(ip).length === 0) return [];
  const address = parseAddress(nameOf(ip));
  return address ? [bucketKey(address.family, address.value)] : [];
}

function allocatedFamilyIndex(ip: IPAddress): string[] {
  const labels = ip.metadata?.labels;
  if (labels?.[LABEL_MANAGED_BY] !== IP_ALLOCATOR_MANAGER) return [];
  const family = labels[LABEL_IP_FAMILY];
  return family ? [family] : [];
}
