/**
 * What the controller knows about IPAddress objects: the shared cache, overlaid with the
 * writes this process made that the cache has not shown yet. Without the overlay a second
 * sync of a Service, started before the watch delivered the IPAddress the first sync
 * created, would see no address and allocate another one. After a restart the overlay is
 * empty and the freshly listed cache is the whole truth, which is what makes the IPAddress
 * objects (not Service status) the source of truth.
 */
import type { IPAddress, KubeClient } from '../../lib/index.js';
import { isOurs, isReleased, parentKey, RELEASED_AT_ANNOTATION } from './types.js';

type Written =
  { obj: IPAddress } | { deleted: { uid: string | undefined; resourceVersion: string | undefined } };

/** Writes of one manager (keyed by its client), by IPAddress name. */
const overlays = new WeakMap<KubeClient, Map<string, Written>>();

export function overlayFor(client: KubeClient): Map<string, Written> {
  let m = overlays.get(client);
  if (!m) overlays.set(client, (m = new Map()));
  return m;
}

function rv(obj: { metadata: { resourceVersion?: string } } | undefined): bigint {
  const v = obj?.metadata.resourceVersion;
  return v && /^\d+$/.test(v) ? BigInt(v) : -1n;
}

/** The cache plus our unseen writes; drops overlay entries the cache has caught up with. */
export function addressView(
  cached: readonly IPAddress[],
  overlay: Map<string, Written>,
): Map<string, IPAddress> {
  const view = new Map(cached.map((ip) => [ip.metadata.name ?? '', ip]));
  for (const [name, w] of overlay) {
    const c = view.get(name);
    if ('obj' in w) {
      if (c && c.metadata.uid === w.obj.metadata.uid && rv(c) >= rv(w.obj)) overlay.delete(name);
      else if (c && c.metadata.uid !== w.obj.metadata.uid && rv(c) > rv(w.obj)) overlay.delete(name);
      else view.set(name, w.obj);
    } else if (!c || c.metadata.uid !== w.deleted.uid) overlay.delete(name);
    else view.delete(name);
  }
  return view;
}

export interface Held {
  ip: IPAddress;
  /** Wall-clock ms when the hold ends. */
  until: number;
}

/** Our IPAddresses of Service `key`: allocated ones and held (released) ones. */
export function addressesOf(
  view: Map<string, IPAddress>,
  key: string,
  holdMs: number,
): { owned: IPAddress[]; held: Held[] } {
  const owned: IPAddress[] = [];
  const held: Held[] = [];
  for (const ip of view.values()) {
    if (!isOurs(ip) || parentKey(ip) !== key) continue;
    if (isReleased(ip)) held.push({ ip, until: holdEnd(ip, holdMs) });
    else owned.push(ip);
  }
  return { owned, held };
}

/** When the hold of a released IPAddress ends; an unreadable release time means now. */
export function holdEnd(ip: IPAddress, holdMs: number): number {
  const at = ip.metadata.annotations?.[RELEASED_AT_ANNOTATION];
  const t = at ? Date.parse(at) : NaN;
  return (Number.isNaN(t) ? 0 : t) + holdMs;
}
