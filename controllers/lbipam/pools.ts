/**
 * The pools as the allocator sees them — parsed, ordered, checked for overlaps — and each
 * pool's status (allocated / available per family, Ready) and its gauge.
 */
import {
  Gauge,
  type CacheLookup,
  type Condition,
  type IPAddress,
  type ReconcileContext,
  type Registry,
} from '../../lib/index.js';
import { formatTime, Resources } from '../../lib/index.js';
import { addressView, overlayFor } from './addresses.js';
import {
  containsIP,
  firstOverlap,
  parseIP,
  parsePoolAddresses,
  sizeOf,
  type AddressRange,
  type Family,
  type ParsedPool,
} from './pool.js';
import {
  isOurs,
  loadBalancerIPPools,
  POOL_METRIC,
  type LBService,
  type LoadBalancerIPPool,
} from './types.js';

export interface PoolInfo {
  pool: LoadBalancerIPPool;
  name: string;
  ranges: AddressRange[];
  /** Why the pool hands out nothing, or undefined when it is usable. */
  problem?: { reason: 'InvalidAddresses' | 'Overlaps'; message: string };
}

const parsed = new WeakMap<LoadBalancerIPPool, ParsedPool>();

function parse(pool: LoadBalancerIPPool): ParsedPool {
  let p = parsed.get(pool);
  if (!p) parsed.set(pool, (p = parsePoolAddresses(pool.spec?.addresses)));
  return p;
}

/**
 * Every pool, oldest first (creationTimestamp, then name). A pool with a bad entry is not
 * usable; nor is one that overlaps an older pool, so adding an overlapping pool never takes
 * addresses away from the pool that had them first.
 */
export function poolInfos(cache: CacheLookup): PoolInfo[] {
  const pools = cache<LoadBalancerIPPool>(loadBalancerIPPools)
    .list()
    .slice()
    .sort(
      (a, b) =>
        (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
        (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
    );
  const out: PoolInfo[] = [];
  for (const pool of pools) {
    const p = parse(pool);
    const info: PoolInfo = { pool, name: pool.metadata.name ?? '', ranges: p.ranges };
    if (p.errors.length > 0) info.problem = { reason: 'InvalidAddresses', message: p.errors.join('; ') };
    else {
      for (const older of out) {
        const o = firstOverlap(p.ranges, older.ranges);
        if (o) {
          info.problem = {
            reason: 'Overlaps',
            message: `${o[0].source} overlaps ${o[1].source} of LoadBalancerIPPool ${older.name}`,
          };
          break;
        }
      }
    }
    out.push(info);
  }
  return out;
}

/** Is `ip` inside any pool's parsed ranges (usable or not)? Outside every pool means release. */
export function inAnyPool(infos: readonly PoolInfo[], ip: string): boolean {
  const p = parseIP(ip);
  return !!p && infos.some((i) => containsIP(i.ranges, p.family, p.value));
}

/** The pool keys that hold `ip` (for status), plus nothing when it is in none. */
export function poolsHolding(cache: CacheLookup, ip: string): string[] {
  const p = parseIP(ip);
  if (!p) return [];
  return poolInfos(cache)
    .filter((i) => containsIP(i.ranges, p.family, p.value))
    .map((i) => i.name);
}

/** Services that may be waiting for an address: type LoadBalancer without an ingress IP. */
export function pendingServiceKeys(
  cache: CacheLookup,
  namespace?: string,
): { namespace: string; name: string }[] {
  return cache<LBService>(Resources.services)
    .list()
    .filter(
      (s) =>
        s.spec?.type === 'LoadBalancer' &&
        (namespace === undefined || s.metadata.namespace === namespace) &&
        !(s.status?.loadBalancer?.ingress ?? []).some((i) => i.ip),
    )
    .map((s) => ({ namespace: s.metadata.namespace ?? '', name: s.metadata.name ?? '' }));
}

const FAMILIES: Family[] = ['IPv4', 'IPv6'];

function gauge(registry: Registry): Gauge<'pool' | 'family' | 'state'> {
  return (
    (registry.getSingleMetric(POOL_METRIC) as Gauge<'pool' | 'family' | 'state'> | undefined) ??
    new Gauge({
      name: POOL_METRIC,
      help: 'Addresses of each LoadBalancerIPPool by family: allocated (in use or held after release) and available.',
      labelNames: ['pool', 'family', 'state'],
      registers: [registry],
    })
  );
}

type PoolStatus = NonNullable<LoadBalancerIPPool['status']>;

/**
 * Every allocation changes its pool's counts; writing status for each would cost one request
 * per allocation under churn. A pool's status is written at most once per this interval
 * (monotonic), the rest of a burst folds into one write at its end.
 */
export const POOL_STATUS_INTERVAL_MS = 1_000;
const lastStatusWrite = new WeakMap<object, Map<string, number>>();

/** Pool sync: status (allocated, available, Ready) by server-side apply, and the gauge. */
export async function syncPool(
  name: string,
  ctx: ReconcileContext<LBService>,
): Promise<{ requeueAfterMs: number } | void> {
  const g = gauge(ctx.metrics);
  const infos = poolInfos(ctx.cache);
  const info = infos.find((i) => i.name === name);
  if (!info) {
    for (const family of FAMILIES)
      for (const state of ['allocated', 'available']) g.remove({ pool: name, family, state });
    return;
  }
  const view = addressView(ctx.cache<IPAddress>(Resources.ipAddresses).list(), overlayFor(ctx.client));
  const allocated: Record<Family, number> = { IPv4: 0, IPv6: 0 };
  const taken: Record<Family, number> = { IPv4: 0, IPv6: 0 };
  for (const ip of view.values()) {
    const p = parseIP(ip.metadata.name ?? '');
    if (!p || !containsIP(info.ranges, p.family, p.value)) continue;
    taken[p.family]++;
    if (isOurs(ip)) allocated[p.family]++;
  }
  const available: Record<Family, bigint> = { IPv4: 0n, IPv6: 0n };
  for (const f of FAMILIES) {
    const size = info.problem?.reason === 'InvalidAddresses' ? 0n : sizeOf(info.ranges, f);
    available[f] = info.problem ? 0n : size - BigInt(taken[f]);
    g.set({ pool: name, family: f, state: 'allocated' }, allocated[f]);
    g.set({ pool: name, family: f, state: 'available' }, Number(available[f]));
  }
  const pool = info.pool;
  const old = pool.status?.conditions?.find((c) => c.type === 'Ready');
  const ready: Omit<Condition, 'lastTransitionTime'> = info.problem
    ? { type: 'Ready', status: 'False', reason: info.problem.reason, message: info.problem.message }
    : { type: 'Ready', status: 'True', reason: 'Valid', message: 'the pool hands out addresses' };
  const generation = pool.metadata.generation;
  const status: PoolStatus = {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    allocated: { ipv4: allocated.IPv4, ipv6: allocated.IPv6 },
    available: { ipv4: available.IPv4.toString(), ipv6: available.IPv6.toString() },
    conditions: [
      {
        ...ready,
        ...(generation !== undefined ? { observedGeneration: generation } : {}),
        lastTransitionTime:
          old && old.status === ready.status && old.lastTransitionTime
            ? old.lastTransitionTime
            : formatTime(ctx.clock.now()),
      },
    ],
  };
  if (sameStatus(pool.status, status)) return;
  let writes = lastStatusWrite.get(ctx.client);
  if (!writes) lastStatusWrite.set(ctx.client, (writes = new Map()));
  const since = ctx.clock.monotonicNow() - (writes.get(name) ?? -Infinity);
  if (since < POOL_STATUS_INTERVAL_MS) return { requeueAfterMs: POOL_STATUS_INTERVAL_MS - since };
  writes.set(name, ctx.clock.monotonicNow());
  if (info.problem && (old?.status !== 'False' || old.reason !== info.problem.reason))
    ctx.recorder.event(pool, 'Warning', info.problem.reason, 'Validate', info.problem.message);
  await ctx.client.resource<LoadBalancerIPPool>(loadBalancerIPPools).patch(
    name,
    { apiVersion: 'lb.ts-kcm.io/v1alpha1', kind: 'LoadBalancerIPPool', metadata: { name }, status },
    {
      type: 'apply',
      subresource: 'status',
      fieldManager: 'service-lb-ipam-controller',
      force: true,
      signal: ctx.signal,
    },
  );
}

function sameStatus(a: PoolStatus | undefined, b: PoolStatus): boolean {
  const strip = (s: PoolStatus | undefined) =>
    JSON.stringify({
      g: s?.observedGeneration,
      a: s?.allocated,
      v: s?.available,
      c: (s?.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration]),
    });
  return strip(a) === strip(b);
}
