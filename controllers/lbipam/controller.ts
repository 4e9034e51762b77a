/**
 * service-lb-ipam-controller: LoadBalancer IPs from LoadBalancerIPPools for Services of class
 * lb.ts-kcm.io/ipam. Written on the public API only (`ts-kcm`), like a plugin would be.
 *
 * One sync of a Service is one flow: pick an address, create its IPAddress (the apiserver's
 * unique names are the lock against a second owner), then write services/status; when the
 * status write fails, the IPAddresses this attempt created are deleted before the error is
 * returned, so nothing is orphaned (a cancelled sync — key moved, Lease lost — writes nothing
 * more; its IPAddress names the Service in its parentRef, and the next sync, on whichever
 * replica, finds it owned and keeps it). Release writes status first, then relabels the
 * IPAddress as released with the time; it is deleted once the release hold has passed.
 */
import {
  defineController,
  errorMessage,
  formatMicroTime,
  isAlreadyExists,
  isNotFound,
  Resources,
  type IPAddress,
  type KubeObject,
  type ReconcileContext,
  type ReconcileResult,
} from '../../lib/index.js';
import { addressesOf, addressView, holdEnd, overlayFor, type Held } from './addresses.js';
import { canonicalIP, lowestFree, parseIP, type Family } from './pool.js';
import { inAnyPool, pendingServiceKeys, poolInfos, poolsHolding, syncPool, type PoolInfo } from './pools.js';
import {
  CONCURRENT_SYNCS_FLAG,
  CONTROLLER_NAME,
  DEFAULT_CLASS_FLAG,
  DEFAULT_RELEASE_HOLD_MS,
  DEFAULT_WORKERS,
  FAMILY_LABEL,
  IPS_ANNOTATION,
  isManagedService,
  isOurs,
  isReleased,
  labelsMatch,
  LB_CLASS,
  LB_FINALIZER,
  loadBalancerIPPools,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  parentKey,
  POOL_ANNOTATION,
  poolCRDPath,
  RELEASE_HOLD_FLAG,
  RELEASED_AT_ANNOTATION,
  RELEASED_LABEL,
  type LBService,
  type LoadBalancerIngress,
} from './types.js';

type Ctx = ReconcileContext<LBService>;

/** A sync that cannot allocate: an event, then a retry with backoff (or at the hold's end). */
class AllocationFailure extends Error {
  constructor(
    message: string,
    readonly retryAtMs?: number,
  ) {
    super(message);
  }
}

export const serviceLBIPAMController = defineController<LBService>({
  name: CONTROLLER_NAME,
  for: Resources.services,
  watches: [
    {
      resource: Resources.ipAddresses,
      map: (obj, cache) => {
        const ip = obj as IPAddress;
        if (!isOurs(ip)) return [];
        const parent = parentKey(ip);
        return [
          ...(parent ? [keyOf(parent)] : []),
          ...poolsHolding(cache, ip.metadata.name ?? '').map((name) => ({ name })),
          // A held address coming and going is what pending Services wait for.
          ...(isReleased(ip) ? pendingServiceKeys(cache) : []),
        ];
      },
    },
    {
      resource: loadBalancerIPPools,
      map: (pool, cache) => [{ name: pool.metadata.name ?? '' }, ...pendingServiceKeys(cache)],
    },
    { resource: Resources.namespaces, map: (ns, cache) => pendingServiceKeys(cache, ns.metadata.name) },
  ],
  // On by default: without the CRD, the manager's per-controller cache-sync gate says so once
  // and holds back this controller alone until the CRD appears.
  workers: { flag: CONCURRENT_SYNCS_FLAG, default: DEFAULT_WORKERS },
  flags: [
    {
      name: DEFAULT_CLASS_FLAG,
      type: 'boolean',
      defaultValue: 0,
      description: 'Also serve LoadBalancer Services that set no spec.loadBalancerClass.',
    },
    {
      name: RELEASE_HOLD_FLAG,
      type: 'duration',
      defaultValue: DEFAULT_RELEASE_HOLD_MS,
      description: 'How long a released LoadBalancer IP is held before another Service may get it.',
    },
  ],
  writes: [
    { resource: Resources.services, verbs: ['patch'] },
    { resource: Resources.services, subresource: 'status', verbs: ['patch'] },
    { resource: Resources.ipAddresses, verbs: ['create', 'patch', 'delete'] },
    { resource: loadBalancerIPPools, subresource: 'status', verbs: ['patch'] },
  ],
  crds: [poolCRDPath()],
  // With --sharding-ring, Service keys (ns/name) and pool keys (name) split by key. Safe: two
  // Services allocating on two replicas race as on two workers of one process — the
  // IPAddress's unique name is the lock (one create wins, the other retries), and every
  // replica caches all IPAddresses and pools; a pool's status is written only by its key's owner.
  sharding: 'key',
  async reconcile(req, ctx) {
    if (req.namespace === undefined) return syncPool(req.name, ctx);
    return syncService(req.key, req.object, ctx);
  },
});

function keyOf(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

function holdMsOf(ctx: Ctx): number {
  return ctx.flags[RELEASE_HOLD_FLAG] ?? DEFAULT_RELEASE_HOLD_MS;
}

async function syncService(
  key: string,
  svc: LBService | undefined,
  ctx: Ctx,
): Promise<ReconcileResult | void> {
  const holdMs = holdMsOf(ctx);
  const view = addressView(ctx.cache<IPAddress>(Resources.ipAddresses).list(), overlayFor(ctx.client));
  const { owned, held } = addressesOf(view, key, holdMs);
  const defaultClass = (ctx.flags[DEFAULT_CLASS_FLAG] ?? 0) !== 0;
  const wanted = !!svc && !svc.metadata.deletionTimestamp && isManagedService(svc, defaultClass);
  if (!wanted) {
    await release(svc, owned, ctx);
    // The finalizer is the upstream one: leave it to whoever serves another class.
    const ours =
      owned.length > 0 ||
      svc?.spec?.loadBalancerClass === LB_CLASS ||
      (defaultClass && svc?.spec?.loadBalancerClass === undefined) ||
      (!!svc && (await finalizerAddedByUs(svc, ctx)));
    if (svc && ours && svc.metadata.finalizers?.includes(LB_FINALIZER)) {
      await ctx.removeFinalizer(svc, LB_FINALIZER);
      if (owned.length > 0)
        event(ctx, svc, 'Normal', 'DeletedLoadBalancer', 'Release', 'Deleted load balancer');
    }
    return endHolds([...held, ...owned.map((ip) => ({ ip, until: ctx.clock.now() + holdMs }))], ctx);
  }
  const result = await allocate(svc, owned, view, ctx);
  const holds = await endHolds(held, ctx);
  if (result?.requeueAfterMs !== undefined && holds?.requeueAfterMs !== undefined)
    return { requeueAfterMs: Math.min(result.requeueAfterMs, holds.requeueAfterMs) };
  return result ?? holds;
}

/**
 * A Service whose type changed away from LoadBalancer has lost its class too (the apiserver
 * drops loadBalancerClass with the type), so nothing in the cached object says whether the
 * finalizer is ours — and when it holds no IPAddress any more (its allocation never
 * succeeded because the pool was full, or a fault cut the sync between the release and the
 * finalizer's removal) it would stay, and the Service's deletion hang, forever. The live
 * object's managedFields (stripped from the cache) name the manager that added it. Asked only
 * for such a Service that still has the finalizer, which is rare and short-lived.
 */
async function finalizerAddedByUs(svc: LBService, ctx: Ctx): Promise<boolean> {
  if (
    svc.spec?.type === 'LoadBalancer' ||
    svc.spec?.loadBalancerClass !== undefined ||
    !svc.metadata.finalizers?.includes(LB_FINALIZER)
  )
    return false;
  let live: LBService;
  try {
    live = await ctx.client
      .resource<LBService>(Resources.services)
      .get(svc.metadata.name ?? '', svc.metadata.namespace, { signal: ctx.signal });
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  const element = `v:${JSON.stringify(LB_FINALIZER)}`;
  return (live.metadata.managedFields ?? []).some((f) => {
    const entry = f as {
      manager?: string;
      fieldsV1?: Record<string, Record<string, Record<string, unknown>>>;
    };
    return entry.manager === CONTROLLER_NAME && !!entry.fieldsV1?.['f:metadata']?.['f:finalizers']?.[element];
  });
}

/** Status first (drop our IPs), then relabel each IPAddress as released: it is held from now. */
async function release(svc: LBService | undefined, ips: IPAddress[], ctx: Ctx): Promise<void> {
  if (ips.length === 0) return;
  const names = new Set(ips.map((ip) => ip.metadata.name));
  if (svc) {
    event(ctx, svc, 'Normal', 'DeletingLoadBalancer', 'Release', 'Deleting load balancer');
    const ingress = svc.status?.loadBalancer?.ingress ?? [];
    if (ingress.some((i) => i.ip && names.has(i.ip)))
      await patchIngress(
        svc,
        ingress.filter((i) => !(i.ip && names.has(i.ip))),
        ctx,
      );
  }
  const overlay = overlayFor(ctx.client);
  for (const ip of ips) {
    const name = ip.metadata.name ?? '';
    try {
      const patched = await ctx.client.resource<IPAddress>(Resources.ipAddresses).patch(
        name,
        {
          metadata: {
            resourceVersion: ip.metadata.resourceVersion,
            labels: { [RELEASED_LABEL]: 'true' },
            annotations: { [RELEASED_AT_ANNOTATION]: formatMicroTime(ctx.clock.now()) },
          },
        },
        { type: 'merge', fieldManager: CONTROLLER_NAME, signal: ctx.signal },
      );
      overlay.set(name, { obj: patched });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      overlay.set(name, { deleted: { uid: ip.metadata.uid, resourceVersion: ip.metadata.resourceVersion } });
    }
  }
}

/** Delete held IPAddresses whose hold is over; requeue for the next one that ends. */
async function endHolds(held: Held[], ctx: Ctx): Promise<ReconcileResult | void> {
  const now = ctx.clock.now();
  let next: number | undefined;
  for (const h of held) {
    if (h.until <= now) await deleteAddress(h.ip, ctx);
    else next = Math.min(next ?? h.until, h.until);
  }
  return next === undefined ? undefined : { requeueAfterMs: Math.max(1, next - now) };
}

async function deleteAddress(ip: IPAddress, ctx: Ctx): Promise<void> {
  const name = ip.metadata.name ?? '';
  try {
    await ctx.client.resource(Resources.ipAddresses).delete(name, {
      ...(ip.metadata.uid ? { preconditions: { uid: ip.metadata.uid } } : {}),
      signal: ctx.signal,
    });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  overlayFor(ctx.client).set(name, {
    deleted: { uid: ip.metadata.uid, resourceVersion: ip.metadata.resourceVersion },
  });
}

function familiesOf(svc: LBService): Family[] {
  const fams = (svc.spec?.ipFamilies ?? []).filter((f) => f === 'IPv4' || f === 'IPv6');
  return fams.length > 0 ? fams : ['IPv4'];
}

/** Requested IPs by family: the annotation, else the deprecated spec.loadBalancerIP. */
function requestedIPs(svc: LBService, families: Family[]): Map<Family, string> {
  const text = svc.metadata.annotations?.[IPS_ANNOTATION] ?? svc.spec?.loadBalancerIP ?? '';
  const out = new Map<Family, string>();
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const ip = parseIP(part);
    if (!ip) throw new AllocationFailure(`requested IP "${part}" is not an IP address`);
    if (!families.includes(ip.family))
      throw new AllocationFailure(
        `requested IP ${part} is ${ip.family}, but the Service's ipFamilies are ${families.join(',')}`,
      );
    if (out.has(ip.family))
      throw new AllocationFailure(`more than one ${ip.family} address requested (${text})`);
    out.set(ip.family, canonicalIP(part)!);
  }
  return out;
}

async function allocate(
  svc: LBService,
  owned: IPAddress[],
  cachedView: Map<string, IPAddress>,
  ctx: Ctx,
): Promise<ReconcileResult | void> {
  let view = cachedView;
  const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
  const families = familiesOf(svc);
  const infos = poolInfos(ctx.cache);
  let requested: Map<Family, string>;
  try {
    requested = requestedIPs(svc, families);
  } catch (err) {
    return failed(svc, err, ctx);
  }
  // Keep one address per family that still fits: in some pool, of a wanted family, the one asked for.
  let ingress = svc.status?.loadBalancer?.ingress ?? [];
  const keep = new Map<Family, string>();
  const drop: IPAddress[] = [];
  const byPreference = [...owned].sort(
    (a, b) =>
      Number(!ingress.some((i) => i.ip === a.metadata.name)) -
      Number(!ingress.some((i) => i.ip === b.metadata.name)),
  );
  for (const ip of byPreference) {
    const name = ip.metadata.name ?? '';
    const fam = parseIP(name)?.family;
    const ok =
      fam !== undefined &&
      families.includes(fam) &&
      !keep.has(fam) &&
      inAnyPool(infos, name) &&
      (!requested.has(fam) || requested.get(fam) === name);
    if (ok) keep.set(fam, name);
    else drop.push(ip);
  }
  if (drop.length > 0) {
    await release(svc, drop, ctx);
    const dropped = new Set(drop.map((ip) => ip.metadata.name));
    ingress = ingress.filter((i) => !(i.ip && dropped.has(i.ip)));
    view = addressView(ctx.cache<IPAddress>(Resources.ipAddresses).list(), overlayFor(ctx.client));
  }
  const missing = families.filter((f) => !keep.has(f));
  await ctx.ensureFinalizer(svc, LB_FINALIZER); // before the first allocation, as upstream

  const created: IPAddress[] = [];
  const failures: AllocationFailure[] = [];
  try {
    if (missing.length > 0)
      event(ctx, svc, 'Normal', 'EnsuringLoadBalancer', 'Allocate', 'Ensuring load balancer');
    for (const family of missing) {
      try {
        const ip = await allocateOne(svc, key, family, requested.get(family), infos, view, ctx);
        created.push(ip);
        keep.set(family, ip.metadata.name ?? '');
      } catch (err) {
        if (!(err instanceof AllocationFailure)) throw err;
        failures.push(err);
      }
    }
    const desired: LoadBalancerIngress[] = families
      .filter((f) => keep.has(f))
      .map((f) => ({ ip: keep.get(f)!, ipMode: 'VIP' }));
    const others = ingress.filter((i) => !i.ip); // hostnames are not ours to drop
    const next = [...desired, ...others];
    if (JSON.stringify(next) !== JSON.stringify(ingress)) await patchIngress(svc, next, ctx);
  } catch (err) {
    // The one flow: what this attempt created goes before the error is returned.
    for (const ip of created) await deleteAddress(ip, ctx);
    // Cancelled (the key moved to another replica, the Lease was lost, shutdown): not a
    // failure of this Service, so no Warning on it.
    if (ctx.signal?.aborted) throw err;
    event(
      ctx,
      svc,
      'Warning',
      'SyncLoadBalancerFailed',
      'Allocate',
      `Error syncing load balancer: ${errorMessage(err)}`,
    );
    throw err;
  }
  if (created.length > 0)
    event(
      ctx,
      svc,
      'Normal',
      'EnsuredLoadBalancer',
      'Allocate',
      `Ensured load balancer: ${[...keep.values()].join(', ')}`,
    );
  const needed = svc.spec?.ipFamilyPolicy === 'PreferDualStack' && keep.size > 0 ? [] : failures;
  if (needed.length === 0) return;
  const retryAt = needed.map((f) => f.retryAtMs).filter((t): t is number => t !== undefined);
  if (retryAt.length === needed.length) {
    for (const f of needed) event(ctx, svc, 'Warning', 'AllocationFailed', 'Allocate', f.message);
    return { requeueAfterMs: Math.max(1, Math.min(...retryAt) - ctx.clock.now()) };
  }
  return failed(svc, new AllocationFailure(needed.map((f) => f.message).join('; ')), ctx);
}

function failed(svc: LBService, err: unknown, ctx: Ctx): never {
  event(ctx, svc, 'Warning', 'AllocationFailed', 'Allocate', errorMessage(err));
  throw err;
}

/** Pools this Service may take `family` addresses from, in order. */
function candidatePools(
  svc: LBService,
  family: Family,
  requested: string | undefined,
  infos: PoolInfo[],
  ctx: Ctx,
): PoolInfo[] {
  const named = svc.metadata.annotations?.[POOL_ANNOTATION];
  const hasFamily = (i: PoolInfo) => i.ranges.some((r) => r.family === family);
  if (named) {
    const info = infos.find((i) => i.name === named);
    if (!info)
      throw new AllocationFailure(
        `LoadBalancerIPPool ${named} (annotation ${POOL_ANNOTATION}) does not exist`,
      );
    if (info.problem)
      throw new AllocationFailure(`LoadBalancerIPPool ${named} is not ready: ${info.problem.message}`);
    if (!hasFamily(info))
      throw new AllocationFailure(`LoadBalancerIPPool ${named} has no ${family} addresses`);
    return [info];
  }
  const usable = infos.filter((i) => !i.problem && hasFamily(i));
  if (requested) {
    const ip = parseIP(requested)!;
    const holding = usable.filter((i) =>
      i.ranges.some((r) => r.family === ip.family && r.start <= ip.value && ip.value <= r.end),
    );
    if (holding.length === 0)
      throw new AllocationFailure(`requested IP ${requested} is not in any ready LoadBalancerIPPool`);
    return holding;
  }
  const nsLabels = ctx.cache(Resources.namespaces).get(svc.metadata.namespace ?? '')?.metadata.labels;
  const matching = usable.filter(
    (i) =>
      i.pool.spec?.autoAssign !== false &&
      labelsMatch(i.pool.spec?.serviceSelector, svc.metadata.labels) &&
      (!i.pool.spec?.namespaceSelector || labelsMatch(i.pool.spec.namespaceSelector, nsLabels)),
  );
  if (matching.length === 0)
    throw new AllocationFailure(
      `no ready LoadBalancerIPPool with ${family} addresses matches this Service (check the pools' autoAssign, serviceSelector and namespaceSelector, or name one in ${POOL_ANNOTATION})`,
    );
  return matching;
}

const MAX_TAKEN_SKIPS = 64;

/** Created by another worker of this process after this sync's view was taken. */
function createdSince(ctx: Ctx, name: string): boolean {
  const w = overlayFor(ctx.client).get(name);
  return !!w && 'obj' in w && !isReleased(w.obj);
}

/**
 * Names this process is creating right now, per manager (client). Workers run concurrently:
 * without this, all of them would pick the same lowest free address and all but one would
 * lose a request to AlreadyExists.
 */
const creating = new WeakMap<object, Set<string>>();
function inFlight(ctx: Ctx): Set<string> {
  let s = creating.get(ctx.client);
  if (!s) creating.set(ctx.client, (s = new Set()));
  return s;
}

/** Create the IPAddress for one family: the requested address, else the lowest free one. */
async function allocateOne(
  svc: LBService,
  key: string,
  family: Family,
  requested: string | undefined,
  infos: PoolInfo[],
  view: Map<string, IPAddress>,
  ctx: Ctx,
): Promise<IPAddress> {
  const pools = candidatePools(svc, family, requested, infos, ctx);
  const holdMs = holdMsOf(ctx);
  const now = ctx.clock.now();
  const expiredHold = (ip: IPAddress | undefined) =>
    !!ip && isOurs(ip) && isReleased(ip) && holdEnd(ip, holdMs) <= now;
  if (requested) {
    const existing = view.get(requested);
    if (existing && !expiredHold(existing)) {
      if (isOurs(existing) && isReleased(existing))
        throw new AllocationFailure(
          `requested IP ${requested} was released and is held until ${new Date(holdEnd(existing, holdMs)).toISOString()}`,
          holdEnd(existing, holdMs),
        );
      throw new AllocationFailure(`requested IP ${requested} is already taken by ${ownerOf(existing)}`);
    }
    if (existing) await deleteAddress(existing, ctx);
    const ip = await createAddress(requested, family, key, svc, ctx);
    if (!ip)
      throw new AllocationFailure(
        `requested IP ${requested} is already taken (the apiserver refused a second owner)`,
      );
    return ip;
  }
  const tried = new Set<string>();
  const busy = inFlight(ctx);
  for (const pool of pools) {
    for (let skips = 0; skips < MAX_TAKEN_SKIPS; skips++) {
      const name = lowestFree(
        pool.ranges,
        family,
        (ip) =>
          tried.has(ip) ||
          busy.has(ip) ||
          createdSince(ctx, ip) ||
          (view.has(ip) && !expiredHold(view.get(ip))),
      );
      if (!name) break;
      const existing = view.get(name);
      if (existing) await deleteAddress(existing, ctx);
      const ip = await createAddress(name, family, key, svc, ctx);
      if (ip) return ip;
      tried.add(name); // someone else's since our cache was filled: next one
    }
  }
  const holds = [...view.values()]
    .filter((ip) => isOurs(ip) && isReleased(ip) && pools.some((p) => inAnyPool([p], ip.metadata.name ?? '')))
    .map((ip) => holdEnd(ip, holdMs));
  const names = pools.map((p) => p.name).join(', ');
  if (holds.length > 0)
    throw new AllocationFailure(
      `LoadBalancerIPPool ${names} has no free ${family} address; ${holds.length} released address(es) are held, the first until ${new Date(Math.min(...holds)).toISOString()}`,
      Math.min(...holds),
    );
  throw new AllocationFailure(
    `LoadBalancerIPPool ${names} has no free ${family} address: add addresses to a pool or delete a LoadBalancer Service`,
  );
}

function ownerOf(ip: IPAddress): string {
  const p = ip.spec?.parentRef;
  return p
    ? `${p.resource}${p.group ? `.${p.group}` : ''} ${p.namespace ? `${p.namespace}/` : ''}${p.name}`
    : 'another object';
}

/** The IPAddress, or undefined when the name is taken (AlreadyExists). */
async function createAddress(
  name: string,
  family: Family,
  key: string,
  svc: LBService,
  ctx: Ctx,
): Promise<IPAddress | undefined> {
  const busy = inFlight(ctx);
  busy.add(name);
  try {
    const ip = await ctx.client.resource<IPAddress>(Resources.ipAddresses).create(
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'IPAddress',
        metadata: { name, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [FAMILY_LABEL]: family } },
        spec: {
          parentRef: {
            group: '',
            resource: 'services',
            namespace: svc.metadata.namespace ?? '',
            name: svc.metadata.name ?? '',
          },
        },
      },
      { fieldManager: CONTROLLER_NAME, signal: ctx.signal },
    );
    overlayFor(ctx.client).set(name, { obj: ip });
    ctx.logger.v(2).info('allocated', { service: key, ip: name });
    return ip;
  } catch (err) {
    if (isAlreadyExists(err)) return undefined;
    throw err;
  } finally {
    busy.delete(name); // created: the overlay has it from here on; refused: the caller moves on
  }
}

async function patchIngress(svc: LBService, ingress: LoadBalancerIngress[], ctx: Ctx): Promise<void> {
  await ctx.client.resource<LBService>(Resources.services).patch(
    svc.metadata.name ?? '',
    { status: { loadBalancer: ingress.length > 0 ? { ingress } : { ingress: null } } },
    {
      type: 'merge',
      subresource: 'status',
      namespace: svc.metadata.namespace,
      fieldManager: CONTROLLER_NAME,
      signal: ctx.signal,
    },
  );
}

function event(
  ctx: Ctx,
  obj: KubeObject,
  type: 'Normal' | 'Warning',
  reason: string,
  action: string,
  note: string,
): void {
  ctx.recorder.event(obj, type, reason, action, note);
}
