/**
 * Invariants of the resourceclaim-controller, read straight from the apiserver (never from
 * ts-kcm's own view), for the fault tests (test/integration/faults-claims.test.ts).
 *
 * Final state (checkClaims, one LIST of pods and claims in the test namespace):
 * - every generated claim (controller owner: a Pod) whose pod is done (Succeeded/Failed) or
 *   gone (or replaced under the same name) is gone itself;
 * - no claim is reserved for a pod that is done or gone;
 * - every claim owned by a pod is named in that pod's status.resourceClaimStatuses under the
 *   pod claim name the claim is annotated with, and every template pod claim of a live pod
 *   has an entry naming a claim owned by that pod (or already gone).
 *
 * History (ClaimHistory: a watch of pods and one of claims in the namespace, straight to the
 * apiserver, from the start of a scenario to its end; analyzeClaimHistory judges it):
 * - a reservation is removed only for a pod that was already done or deleted at that point;
 * - no claim loses its allocation while it still has a consumer that is not done, and no
 *   claim is ever unallocated while reservedFor is non-empty;
 * - every reservation is added once and removed once: never re-added after its removal
 *   (which would mean it was removed twice), and never still present when the claim goes.
 *
 * What a watch can honestly show: every committed version of every object in the namespace,
 * in order, with its resourceVersion — but not who wrote it. The test's own writers never
 * remove a reservation, so every removal seen is the controller's. "At that point" compares
 * resourceVersions of a pod and a claim: they come from the same etcd, so their numeric order
 * is the order of the writes (the API calls them opaque; one etcd makes them revisions). If a
 * watch has to relist (410), the events in the gap are lost: a pod first seen done after a
 * gap counts as done from before the gap (no false alarm, possibly a missed one), and the
 * number of gaps is reported.
 */
import type { KubeObject, Pod, ResourceClaim } from '../../lib/api/index.js';
import { isGone, Resources, type KubeClient, type ResourceClient } from '../../lib/client/index.js';
import type { Violation } from './invariants.js';

export type { Violation } from './invariants.js';

export const POD_CLAIM_NAME_ANNOTATION = 'resource.kubernetes.io/pod-claim-name';

/** One version of a claim as the watch delivered it. */
export interface ClaimVersion {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  rv: bigint;
  name: string;
  uid: string;
  allocated: boolean;
  /** Consumer UIDs with their names, in status order. */
  reservedFor: { uid: string; name: string }[];
}

export interface HistoryAnalysis {
  violations: Violation[];
  /** Reservations seen added and seen removed over the whole history. */
  added: number;
  removed: number;
  deallocated: number;
}

/** The first resourceVersion at which each pod (by UID) was seen done or deleted. */
export function podDoneAt(
  events: { type: string; pod: Pod }[],
  into = new Map<string, bigint>(),
): Map<string, bigint> {
  for (const { type, pod } of events) {
    const uid = pod.metadata.uid;
    const rv = pod.metadata.resourceVersion;
    if (!uid || !rv || into.has(uid)) continue;
    const phase = pod.status?.phase;
    if (type === 'DELETED' || phase === 'Succeeded' || phase === 'Failed' || pod.metadata.deletionTimestamp)
      into.set(uid, BigInt(rv));
  }
  return into;
}

export function claimVersion(type: ClaimVersion['type'], claim: ResourceClaim): ClaimVersion {
  return {
    type,
    rv: BigInt(claim.metadata.resourceVersion ?? '0'),
    name: claim.metadata.name ?? '',
    uid: claim.metadata.uid ?? '',
    allocated: Boolean(claim.status?.allocation),
    reservedFor: (claim.status?.reservedFor ?? []).map((r) => ({ uid: r.uid, name: r.name })),
  };
}

/**
 * Judges a claim history (each claim's versions in watch order) against the moments the pods
 * were done (podDoneAt). Pure: the unit tests feed it hand-made histories.
 */
export function analyzeClaimHistory(versions: ClaimVersion[], doneAt: Map<string, bigint>): HistoryAnalysis {
  const out: HistoryAnalysis = { violations: [], added: 0, removed: 0, deallocated: 0 };
  const last = new Map<string, ClaimVersion>();
  const removedOnce = new Map<string, Set<string>>();
  const isDoneAt = (podUID: string, rv: bigint): boolean => {
    const at = doneAt.get(podUID);
    return at !== undefined && at <= rv;
  };
  for (const v of versions) {
    const object = v.name;
    const prev = last.get(v.uid);
    const before = new Map((prev?.reservedFor ?? []).map((r) => [r.uid, r.name]));
    const now = new Map(v.reservedFor.map((r) => [r.uid, r.name]));
    const removed = removedOnce.get(v.uid) ?? new Set<string>();
    removedOnce.set(v.uid, removed);

    if (v.type === 'DELETED') {
      for (const [uid, name] of now)
        out.violations.push({
          object,
          invariant: 'every reservation removed before the claim goes',
          detail: `claim deleted at rv ${v.rv} still reserved for pod ${name} (${uid})`,
        });
      last.delete(v.uid);
      continue;
    }
    for (const [uid, name] of now) {
      if (before.has(uid)) continue;
      out.added++;
      if (removed.has(uid))
        out.violations.push({
          object,
          invariant: 'every reservation removed exactly once',
          detail: `reservation for pod ${name} (${uid}) re-added at rv ${v.rv} after its removal`,
        });
    }
    for (const [uid, name] of before) {
      if (now.has(uid)) continue;
      out.removed++;
      removed.add(uid);
      if (!isDoneAt(uid, v.rv))
        out.violations.push({
          object,
          invariant: 'a reservation is removed only for a pod that is done or gone',
          detail: `reservation for pod ${name} (${uid}) removed at rv ${v.rv}; pod done at ${doneAt.get(uid) ?? 'never'}`,
        });
    }
    if (!v.allocated && v.reservedFor.length > 0)
      out.violations.push({
        object,
        invariant: 'no claim unallocated while reserved',
        detail: `rv ${v.rv}: reservedFor ${v.reservedFor.map((r) => r.name).join(',')} without an allocation`,
      });
    if (prev?.allocated && !v.allocated) {
      out.deallocated++;
      const live = prev.reservedFor.filter((r) => !isDoneAt(r.uid, v.rv));
      if (live.length > 0)
        out.violations.push({
          object,
          invariant: 'no claim deallocated while reserved',
          detail: `deallocated at rv ${v.rv} while reserved for pods not done: ${live.map((r) => r.name).join(',')}`,
        });
    }
    last.set(v.uid, v);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Watches the pods and claims of one namespace for a scenario (straight to the apiserver),
 * keeping every claim version and the moment every pod was done. A sentinel ConfigMap is not
 * in these watches, so sync() writes a label on a sentinel pod and a sentinel claim and waits
 * until both watches delivered it: after that the history holds every write before sync().
 */
export class ClaimHistory {
  readonly versions: ClaimVersion[] = [];
  readonly doneAt = new Map<string, bigint>();
  /** Relists after a 410 (each a possible gap in the history). */
  gaps = 0;
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly seen = { pod: '', claim: '' };
  private podRV = 0n;
  private readonly podUIDs = new Set<string>();

  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly sentinel = 'history-sentinel',
  ) {}

  async start(): Promise<void> {
    const ns = this.namespace;
    await this.client.resource<Pod>(Resources.pods).create(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: this.sentinel },
        spec: {
          nodeSelector: { 'ts-kcm.test/no-such-node': 'true' },
          containers: [{ name: 'c', image: 'x' }],
        },
      },
      { namespace: ns },
    );
    await this.client.resource<ResourceClaim>(Resources.resourceClaims).create(
      {
        apiVersion: 'resource.k8s.io/v1',
        kind: 'ResourceClaim',
        metadata: { name: this.sentinel },
        spec: {},
      },
      { namespace: ns },
    );
    const ready: Promise<void>[] = [];
    ready.push(
      this.run(this.client.resource<Pod>(Resources.pods), 'pod', (type, pod) => {
        if (pod.metadata.name === this.sentinel) return;
        this.podRV = BigInt(pod.metadata.resourceVersion ?? '0');
        if (pod.metadata.uid) this.podUIDs.add(pod.metadata.uid);
        podDoneAt([{ type, pod }], this.doneAt);
      }),
    );
    ready.push(
      this.run(this.client.resource<ResourceClaim>(Resources.resourceClaims), 'claim', (type, claim) => {
        if (claim.metadata.name === this.sentinel) return;
        this.versions.push(claimVersion(type, claim));
      }),
    );
    await Promise.all(ready);
  }

  /** Waits until both watches delivered a write made now. */
  async sync(timeoutMs = 60_000): Promise<void> {
    const mark = `m${Date.now()}`;
    const patch = { metadata: { labels: { 'ts-kcm.test/sync': mark } } };
    const opts = { type: 'merge' as const, namespace: this.namespace };
    await this.client.resource<Pod>(Resources.pods).patch(this.sentinel, patch, opts);
    await this.client.resource<ResourceClaim>(Resources.resourceClaims).patch(this.sentinel, patch, opts);
    const deadline = Date.now() + timeoutMs;
    while (this.seen.pod !== mark || this.seen.claim !== mark) {
      if (Date.now() > deadline) throw new Error(`claim history: watches did not deliver sync mark ${mark}`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.loops);
  }

  analyze(): HistoryAnalysis {
    return analyzeClaimHistory(this.versions, this.doneAt);
  }

  /** LIST then WATCH from its resourceVersion, resuming after every end; relist on 410. Resolves once listed. */
  private run<T extends KubeObject>(
    res: ResourceClient<T>,
    which: 'pod' | 'claim',
    onEvent: (type: ClaimVersion['type'], obj: T) => void,
  ): Promise<void> {
    const signal = this.abort.signal;
    let listed: () => void = () => undefined;
    const ready = new Promise<void>((r) => (listed = r));
    const relist = async (first: boolean): Promise<string> => {
      const list = await res.list({ namespace: this.namespace });
      if (!first && which === 'pod') {
        // Pods deleted in the gap: done no later than the last pod event before it.
        const listed = new Set(list.items.map((o) => o.metadata.uid ?? ''));
        for (const uid of this.podUIDs)
          if (!listed.has(uid) && !this.doneAt.has(uid)) this.doneAt.set(uid, this.podRV);
      }
      for (const obj of list.items) {
        // After a gap, a pod first seen done counts as done from before it (see the header).
        if (!first && which === 'pod') {
          const pod = obj as unknown as Pod;
          const uid = pod.metadata.uid ?? '';
          if (uid && !this.doneAt.has(uid) && podDoneAt([{ type: 'MODIFIED', pod }]).has(uid))
            this.doneAt.set(uid, this.podRV);
          continue;
        }
        onEvent('ADDED', obj);
      }
      return list.metadata.resourceVersion ?? '';
    };
    const loop = (async () => {
      let rv = await relist(true);
      listed();
      while (!signal.aborted) {
        try {
          for await (const ev of res.watch(
            { namespace: this.namespace, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 60 },
            signal,
          )) {
            if (ev.type === 'ERROR') {
              const code = (ev.object as unknown as { code?: number }).code;
              if (code === 410) throw Object.assign(new Error('gone'), { gone: true });
              continue;
            }
            rv = ev.object.metadata.resourceVersion ?? rv;
            if (ev.type === 'BOOKMARK') continue;
            const mark = ev.object.metadata.labels?.['ts-kcm.test/sync'];
            if (ev.object.metadata.name === this.sentinel && mark) this.seen[which] = mark;
            onEvent(ev.type, ev.object);
          }
        } catch (err) {
          if (signal.aborted) break;
          if (isGone(err) || (err as { gone?: boolean }).gone) {
            this.gaps++;
            rv = await relist(false).catch(() => rv);
          } else await sleep(200);
        }
      }
    })();
    this.loops.push(loop.catch(() => undefined));
    return Promise.race([ready, loop]);
  }
}

function isDone(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

function ownerPod(claim: ResourceClaim): { name: string; uid: string } | undefined {
  const ref = claim.metadata.ownerReferences?.find(
    (r) => r.controller === true && r.apiVersion === 'v1' && r.kind === 'Pod',
  );
  return ref ? { name: ref.name, uid: ref.uid } : undefined;
}

/** The final-state checks of the header, on lists of a namespace's pods and claims. Pure. */
export function judgeClaims(pods: Pod[], claims: ResourceClaim[], ignore = new Set<string>()): Violation[] {
  const out: Violation[] = [];
  const podByName = new Map(pods.map((p) => [p.metadata.name ?? '', p]));
  const podByUID = new Map(pods.map((p) => [p.metadata.uid ?? '', p]));
  const claimByName = new Map(claims.map((c) => [c.metadata.name ?? '', c]));
  for (const claim of claims) {
    const name = claim.metadata.name ?? '';
    if (ignore.has(name)) continue;
    for (const r of claim.status?.reservedFor ?? []) {
      if (r.resource !== 'pods') continue;
      const pod = podByUID.get(r.uid);
      if (!pod || isDone(pod))
        out.push({
          object: name,
          invariant: 'no claim reserved for a pod that is done or gone',
          detail: `reserved for ${r.name} (${pod ? pod.status?.phase : 'gone'})`,
        });
    }
    const owner = ownerPod(claim);
    if (!owner) continue;
    const pod = podByName.get(owner.name);
    if (!pod || pod.metadata.uid !== owner.uid || isDone(pod)) {
      out.push({
        object: name,
        invariant: 'every generated claim of a finished or deleted pod is gone',
        detail: `pod ${owner.name} is ${!pod || pod.metadata.uid !== owner.uid ? 'gone' : pod.status?.phase}; claim ${
          claim.metadata.deletionTimestamp ? 'being deleted' : 'not being deleted'
        }, ${claim.status?.allocation ? 'allocated' : 'not allocated'}, finalizers ${JSON.stringify(claim.metadata.finalizers ?? [])}`,
      });
      if (!pod || pod.metadata.uid !== owner.uid) continue;
    }
    const podClaim = claim.metadata.annotations?.[POD_CLAIM_NAME_ANNOTATION];
    const entry = pod.status?.resourceClaimStatuses?.find((s) => s.name === podClaim);
    if (entry?.resourceClaimName !== name)
      out.push({
        object: name,
        invariant: "every pod's status.resourceClaimStatuses names its generated claims",
        detail: `pod ${owner.name} records ${JSON.stringify(entry ?? null)} for pod claim ${podClaim}`,
      });
  }
  for (const pod of pods) {
    const podName = pod.metadata.name ?? '';
    if (ignore.has(podName)) continue;
    for (const podClaim of pod.spec?.resourceClaims ?? []) {
      if (!podClaim.resourceClaimTemplateName) continue;
      const entry = pod.status?.resourceClaimStatuses?.find((s) => s.name === podClaim.name);
      const claim = entry?.resourceClaimName ? claimByName.get(entry.resourceClaimName) : undefined;
      const running = !isDone(pod) && !pod.metadata.deletionTimestamp;
      if (!entry?.resourceClaimName)
        out.push({
          object: podName,
          invariant: "every pod's status.resourceClaimStatuses names its generated claims",
          detail: `no claim recorded for pod claim ${podClaim.name}`,
        });
      else if (claim && ownerPod(claim)?.uid !== pod.metadata.uid)
        out.push({
          object: podName,
          invariant: "every pod's status.resourceClaimStatuses names its generated claims",
          detail: `pod claim ${podClaim.name} names ${entry.resourceClaimName}, owned by ${ownerPod(claim)?.name ?? 'nobody'}`,
        });
      else if (!claim && running)
        out.push({
          object: podName,
          invariant: 'the generated claim of a pod that may still run exists',
          detail: `pod claim ${podClaim.name} names ${entry.resourceClaimName}, which is gone`,
        });
    }
  }
  return out;
}

/** checkClaims: judgeClaims on a fresh LIST of the namespace. */
export async function checkClaims(
  client: KubeClient,
  namespace: string,
  ignore?: Set<string>,
): Promise<Violation[]> {
  const [pods, claims] = await Promise.all([
    client.resource<Pod>(Resources.pods).list({ namespace }),
    client.resource<ResourceClaim>(Resources.resourceClaims).list({ namespace }),
  ]);
  return judgeClaims(pods.items, claims.items, ignore);
}
