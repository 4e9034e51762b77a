/**
 * Invariants of service-lb-ipam-controller, read straight from the apiserver (Services and
 * IPAddress objects), for the fault tests. The checks are pure functions of one snapshot so
 * they can be table-tested; `readLBSnapshot` and `LBIngressSampler` fetch the snapshots.
 *
 * The rules, from controllers/lbipam (controller.ts, addresses.ts, ADR 12):
 * - an IP is in at most one Service's status.loadBalancer.ingress (checked on every sample:
 *   one LIST of Services is one consistent revision, so two holders in it were real);
 * - an IP in a Service's ingress is backed by an IPAddress of ours (label
 *   ipaddress.kubernetes.io/managed-by=lb-ipam.ts-kcm.io) whose parentRef is that Service and
 *   that is not released — the IPAddress is the lock, so status naming an IP whose lock is
 *   gone or someone else's means a second Service may be handed it;
 * - no orphaned IPAddress: one of ours that is not released names a live Service that wants
 *   an address (type LoadBalancer, our class, not being deleted); a released one (label
 *   lb.ts-kcm.io/released=true) may outlive its Service only until released-at + the release
 *   hold, after which the controller deletes it (endHolds, on the parent Service's requeue at
 *   the hold's end, or when another Service takes the address); `slackMs` covers that
 *   requeue's queue and request time;
 * - every Service that wants an address has one IPv4 ingress IP once the faults stop (the
 *   test keeps the wanted Services within the pool), and one that no longer wants one
 *   (type changed away, or class dropped) has none of ours left.
 */
import type { IPAddress } from '../../lib/api/index.js';
import { Resources, type KubeClient } from '../../lib/client/index.js';
import {
  isManagedService,
  isOurs,
  isReleased,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  parentKey,
  RELEASED_AT_ANNOTATION,
  type LBService,
} from '../../controllers/lbipam/index.js';
import type { Violation } from './invariants.js';

export interface LBServiceState {
  /** namespace/name */
  key: string;
  /** Type LoadBalancer, our class, no deletionTimestamp: the controller must give it an IP. */
  wanted: boolean;
  ingressIPs: string[];
}

export interface LBAddressState {
  name: string;
  /** namespace/name of the parent Service, if the parentRef names a Service. */
  parent?: string;
  released: boolean;
  /** released-at as wall-clock ms; NaN when released without a readable time. */
  releasedAtMs?: number;
}

export interface LBSnapshot {
  /** Wall-clock ms when the snapshot was read (the IPAddress list's end). */
  at: number;
  services: LBServiceState[];
  /** Our IPAddresses only (managed-by lb-ipam.ts-kcm.io). */
  addresses: LBAddressState[];
}

export interface LBCheckOptions {
  holdMs: number;
  /** Time past the hold's end a released IPAddress may still exist (the requeue's latency). */
  slackMs: number;
  /** Services whose keys start with this are the test's; others are ignored. */
  prefix?: string;
}

/** One snapshot's Services → IP → holders; the running sampler's whole check. */
export function sharedIngressIPs(services: LBServiceState[]): Violation[] {
  const holders = new Map<string, string[]>();
  for (const s of services)
    for (const ip of new Set(s.ingressIPs)) holders.set(ip, [...(holders.get(ip) ?? []), s.key]);
  const out: Violation[] = [];
  for (const [ip, keys] of holders)
    if (keys.length > 1)
      out.push({
        object: ip,
        invariant: "an IP is in at most one Service's status.loadBalancer.ingress",
        detail: `in ${keys.sort().join(', ')}`,
      });
  return out;
}

/**
 * The final-state check (faults stopped, controller caught up): shared IPs, ingress without
 * its IPAddress, orphaned or overdue IPAddresses, wanted Services without an IP and unwanted
 * ones still showing one of ours.
 */
export function checkLBSnapshot(snap: LBSnapshot, opts: LBCheckOptions): Violation[] {
  const mine = (key: string | undefined) => !!key && (!opts.prefix || key.startsWith(opts.prefix));
  const services = snap.services.filter((s) => mine(s.key));
  const byKey = new Map(services.map((s) => [s.key, s]));
  const byIP = new Map(snap.addresses.map((a) => [a.name, a]));
  const out = sharedIngressIPs(services);

  for (const s of services) {
    for (const ip of s.ingressIPs) {
      const a = byIP.get(ip);
      if (!a)
        out.push({
          object: s.key,
          invariant: 'an ingress IP has its IPAddress',
          detail: `${ip}: no IPAddress`,
        });
      else if (a.parent !== s.key)
        out.push({
          object: s.key,
          invariant: 'an ingress IP has its IPAddress',
          detail: `${ip}: IPAddress belongs to ${a.parent ?? 'nothing'}`,
        });
      else if (a.released)
        out.push({
          object: s.key,
          invariant: 'an ingress IP has its IPAddress',
          detail: `${ip}: IPAddress is released`,
        });
    }
    if (s.wanted && s.ingressIPs.length !== 1)
      out.push({
        object: s.key,
        invariant: 'a LoadBalancer Service of our class has one IP',
        detail: `ingress ${JSON.stringify(s.ingressIPs)}`,
      });
    if (!s.wanted && s.ingressIPs.some((ip) => byIP.has(ip)))
      out.push({
        object: s.key,
        invariant: 'a Service that wants no IP shows none of ours',
        detail: `ingress ${JSON.stringify(s.ingressIPs)}`,
      });
  }

  for (const a of snap.addresses) {
    if (!mine(a.parent)) continue;
    if (a.released) {
      const end = (a.releasedAtMs ?? NaN) + opts.holdMs + opts.slackMs;
      if (!(snap.at <= end))
        out.push({
          object: a.name,
          invariant: 'a released IPAddress is deleted once its hold is over',
          detail: Number.isNaN(end)
            ? 'released without a readable released-at'
            : `${snap.at - end + opts.slackMs} ms past its hold (parent ${a.parent})`,
        });
      continue;
    }
    const parent = byKey.get(a.parent!);
    if (!parent?.wanted)
      out.push({
        object: a.name,
        invariant: 'no orphaned IPAddress: an unreleased one has a live Service that wants it',
        detail: parent ? `parent ${a.parent} wants no IP` : `parent ${a.parent} is gone`,
      });
    else if (!parent.ingressIPs.includes(a.name))
      out.push({
        object: a.name,
        invariant: "an unreleased IPAddress is in its Service's ingress",
        detail: `parent ${a.parent} shows ${JSON.stringify(parent.ingressIPs)}`,
      });
  }
  return out;
}

export function serviceState(svc: LBService): LBServiceState {
  return {
    key: `${svc.metadata.namespace}/${svc.metadata.name}`,
    wanted: !svc.metadata.deletionTimestamp && isManagedService(svc, false),
    ingressIPs: (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter((ip): ip is string => !!ip),
  };
}

export function addressState(ip: IPAddress): LBAddressState {
  const parent = parentKey(ip);
  const released = isReleased(ip);
  const at = ip.metadata.annotations?.[RELEASED_AT_ANNOTATION];
  return {
    name: ip.metadata.name ?? '',
    ...(parent ? { parent } : {}),
    released,
    ...(released ? { releasedAtMs: at ? Date.parse(at) : NaN } : {}),
  };
}

/** Services of `namespace` and our IPAddresses, as the apiserver has them now. */
export async function readLBSnapshot(client: KubeClient, namespace: string): Promise<LBSnapshot> {
  const svcs = await client.resource<LBService>(Resources.services).list({ namespace });
  const ips = await client
    .resource<IPAddress>(Resources.ipAddresses)
    .list({ labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` });
  return {
    at: Date.now(),
    services: svcs.items.map(serviceState),
    addresses: ips.items.filter(isOurs).map(addressState),
  };
}

/**
 * Lists the namespace's Services every `intervalMs` while a scenario runs and remembers every
 * IP seen in two Services' ingress in one list.
 */
export class LBIngressSampler {
  private timer?: NodeJS.Timeout;
  private busy = false;
  private readonly found = new Map<string, Violation>();
  samples = 0;
  /** The most Services holding an IP in one sample (for the report). */
  maxWithIP = 0;
  /** Every Service seen holding each IP: more than one means the IP was released and reused. */
  readonly holders = new Map<string, Set<string>>();

  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
  ) {}

  start(intervalMs = 200): void {
    this.timer = setInterval(() => void this.sample(), intervalMs);
    this.timer.unref(); // a failed test that never calls stop() must not keep the process alive
  }

  /** IPs seen in the ingress of more than one Service over the run (at different times). */
  reused(): number {
    return [...this.holders.values()].filter((s) => s.size > 1).length;
  }

  async stop(): Promise<Violation[]> {
    if (this.timer) clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 20));
    await this.sample();
    return [...this.found.values()];
  }

  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const list = await this.client
        .resource<LBService>(Resources.services)
        .list({ namespace: this.namespace });
      const states = list.items.map(serviceState);
      this.maxWithIP = Math.max(this.maxWithIP, states.filter((s) => s.ingressIPs.length > 0).length);
      for (const s of states)
        for (const ip of s.ingressIPs) {
          let seen = this.holders.get(ip);
          if (!seen) this.holders.set(ip, (seen = new Set()));
          seen.add(s.key);
        }
      for (const v of sharedIngressIPs(states)) {
        const id = `${v.object} ${v.detail}`;
        if (!this.found.has(id))
          this.found.set(id, {
            ...v,
            detail: `${v.detail} (resourceVersion ${list.metadata?.resourceVersion})`,
          });
      }
      this.samples++;
    } catch {
      // the apiserver may be busy or restarting; the next sample tries again
    } finally {
      this.busy = false;
    }
  }
}
