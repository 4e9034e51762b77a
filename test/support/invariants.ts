/**
 * Invariants of the controllers, read straight from the apiserver's state (never from
 * ts-kcm's own view), for the fault and soak tests.
 *
 * ServiceCIDR (service-cidr-controller):
 * - every live ServiceCIDR the test owns has the finalizer and Ready=True;
 * - every ServiceCIDR the test deleted is gone, and none disappeared before its
 *   deletionTimestamp + the 10 s grace period (sampled while the test runs).
 */
import type { ServiceCIDR } from '../../lib/api/index.js';
import { Resources, type KubeClient } from '../../lib/client/index.js';

export const SERVICE_CIDR_FINALIZER = 'networking.k8s.io/service-cidr-finalizer';
export const SERVICE_CIDR_GRACE_MS = 10_000;

export interface Violation {
  object: string;
  invariant: string;
  detail: string;
}

/**
 * Samples the ServiceCIDRs every `intervalMs` while a scenario runs, remembering the last
 * deletionTimestamp seen of each and the first moment each was seen gone.
 */
export class ServiceCIDRSampler {
  private readonly deletionTimestamp = new Map<string, number>();
  private readonly goneAt = new Map<string, number>();
  private readonly seen = new Set<string>();
  private timer?: NodeJS.Timeout;
  private busy = false;
  samples = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly prefix: string,
  ) {}

  start(intervalMs = 250): void {
    this.timer = setInterval(() => void this.sample(), intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.sample();
  }

  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const list = await this.client.resource<ServiceCIDR>(Resources.serviceCIDRs).list();
      const now = Date.now();
      const live = new Set<string>();
      for (const sc of list.items) {
        const name = sc.metadata.name ?? '';
        if (!name.startsWith(this.prefix)) continue;
        live.add(name);
        this.seen.add(name);
        if (sc.metadata.deletionTimestamp)
          this.deletionTimestamp.set(name, Date.parse(sc.metadata.deletionTimestamp));
      }
      for (const name of this.seen) if (!live.has(name) && !this.goneAt.has(name)) this.goneAt.set(name, now);
      this.samples++;
    } catch {
      // the apiserver may be down in a scenario; the next sample tries again
    } finally {
      this.busy = false;
    }
  }

  /** Objects released before deletionTimestamp + grace, as far as the samples saw. */
  earlyReleases(): Violation[] {
    const out: Violation[] = [];
    for (const [name, gone] of this.goneAt) {
      const ts = this.deletionTimestamp.get(name);
      if (ts !== undefined && gone < ts + SERVICE_CIDR_GRACE_MS) {
        out.push({
          object: name,
          invariant: 'released no earlier than deletionTimestamp + 10 s',
          detail: `gone ${gone - ts} ms after deletionTimestamp`,
        });
      }
    }
    return out;
  }
}

/** The final-state check: `live` must exist finalized and Ready, `deleted` must be gone. */
export async function checkServiceCIDRs(
  client: KubeClient,
  prefix: string,
  live: Set<string>,
  deleted: Set<string>,
): Promise<Violation[]> {
  const list = await client.resource<ServiceCIDR>(Resources.serviceCIDRs).list();
  const byName = new Map(
    list.items.filter((s) => s.metadata.name?.startsWith(prefix)).map((s) => [s.metadata.name ?? '', s]),
  );
  const out: Violation[] = [];
  for (const name of live) {
    const sc = byName.get(name);
    if (!sc) {
      out.push({ object: name, invariant: 'live ServiceCIDR exists', detail: 'missing' });
      continue;
    }
    if (!sc.metadata.finalizers?.includes(SERVICE_CIDR_FINALIZER))
      out.push({
        object: name,
        invariant: 'has the finalizer',
        detail: JSON.stringify(sc.metadata.finalizers),
      });
    const ready = sc.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status !== 'True')
      out.push({ object: name, invariant: 'Ready=True', detail: JSON.stringify(ready ?? null) });
  }
  for (const name of deleted) {
    if (byName.has(name))
      out.push({ object: name, invariant: 'deleted ServiceCIDR is gone', detail: 'still there' });
  }
  return out;
}
