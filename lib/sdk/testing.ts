/**
 * Test helpers of ts-kcm/testing: run one reconcile of a defined controller against a
 * FakeKubeClient, poll for a condition, and start a real etcd + kube-apiserver (an envtest)
 * with your CRDs installed.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import type { KubeObject } from '../api/index.js';
import { createKubeClient, RestKubeClient } from '../client/client.js';
import { loadKubeConfig } from '../client/config.js';
import type { FakeKubeClient } from '../client/fake.js';
import type { KubeClient, ResourceRef } from '../client/types.js';
import { FakeClock, type Clock } from '../clock/index.js';
import type { ReconcileResult } from '../controller/types.js';
import { ControlPlane } from '../controlplane/index.js';
import { FakeEventRecorder } from '../events/fake.js';
import { nopLogger, type Logger } from '../log/index.js';
import { newRegistry, type Registry } from '../metrics/index.js';
import { CONTROLLER_SPEC, reconcileKey, type DefinedController } from './define.js';

export interface ReconcileOnceOptions {
  client: FakeKubeClient;
  /** Objects to put in the cache (and in the fake client's tracker, unless already there). */
  objects?: KubeObject[];
  /** The key to reconcile: `namespace/name` or `name`. */
  key: string;
  clock?: Clock;
  flags?: Record<string, number>;
  recorder?: FakeEventRecorder;
  logger?: Logger;
  signal?: AbortSignal;
  /** Where the controller's metrics register; default a fresh registry. */
  metrics?: Registry;
}

/**
 * One reconcile of `controller` for `key`, with the cache holding `objects` of its primary
 * resource: what reconcile writes is in `client.actions` (seeding records nothing).
 */
export async function reconcileOnce(
  controller: DefinedController<any>, // eslint-disable-line @typescript-eslint/no-explicit-any
  opts: ReconcileOnceOptions,
): Promise<ReconcileResult | void> {
  const spec = controller[CONTROLLER_SPEC];
  if (!spec) throw new Error('reconcileOnce: the controller was not made by defineController');
  const ref = spec.for;
  opts.client.resource(ref); // registers a CRD's resource with the tracker
  const cache = new Map<string, KubeObject>();
  const declared = [ref, ...(spec.owns ?? []), ...(spec.watches ?? []).map((w) => w.resource)];
  const caches = new Map<ResourceRef, Map<string, KubeObject>>(declared.map((r) => [r, new Map()]));
  caches.set(ref, cache);
  for (const obj of opts.objects ?? []) {
    const key = obj.metadata.namespace
      ? `${obj.metadata.namespace}/${obj.metadata.name}`
      : (obj.metadata.name ?? '');
    for (const [r, m] of caches) if (isOf(obj, r)) m.set(key, obj);
    try {
      opts.client.tracker.add(obj);
    } catch {
      // already there: the caller seeded the client itself
    }
  }
  return reconcileKey(spec, opts.key, {
    client: opts.client,
    recorder: opts.recorder ?? new FakeEventRecorder(),
    logger: opts.logger ?? nopLogger(),
    signal: opts.signal ?? new AbortController().signal,
    clock: opts.clock ?? new FakeClock(),
    flags: opts.flags ?? {},
    get: (k) => cache.get(k),
    list: (namespace) =>
      [...cache.values()].filter((o) => namespace === undefined || o.metadata.namespace === namespace),
    cache: <U extends KubeObject>(resource: ResourceRef) => {
      const m = [...caches].find(
        ([r]) => r.group === resource.group && r.resource === resource.resource,
      )?.[1];
      if (!m)
        throw new Error(
          `reconcileOnce: cache(${resource.resource}): only resources in for, owns or watches have a cache`,
        );
      return { get: (k: string) => m.get(k) as U | undefined, list: () => [...m.values()] as U[] };
    },
    metrics: opts.metrics ?? newRegistry(),
  });
}

function isOf(obj: KubeObject, ref: ResourceRef): boolean {
  const apiVersion = ref.group === '' ? ref.version : `${ref.group}/${ref.version}`;
  return obj.kind === ref.kind && (obj.apiVersion === undefined || obj.apiVersion === apiVersion);
}

/** Polls `fn` (every 100 ms) until it returns a truthy value; errors count as "not yet". */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; description?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const why =
        last === undefined ? '' : `; last error: ${last instanceof Error ? last.message : String(last)}`;
      throw new Error(
        `waitFor: timed out after ${opts.timeoutMs ?? 30_000} ms waiting for ${opts.description ?? 'the condition'}${why}`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}

export interface StartControlPlaneOptions {
  /** CRD yaml files, or directories whose *.yaml / *.yml files are CRDs. */
  crds?: string[];
  /** Also run kube-scheduler. */
  scheduler?: boolean;
  /** Where the control plane keeps its data and logs. Default: a new temp directory. */
  dir?: string;
  logger?: Logger;
}

export interface TestControlPlane {
  kubeconfigPath: string;
  /** An admin client (qps 100). */
  client: KubeClient;
  dir: string;
  stop(): Promise<void>;
}

const CRDS: ResourceRef = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  resource: 'customresourcedefinitions',
  kind: 'CustomResourceDefinition',
  namespaced: false,
};

/** Every CRD object in the given files and directories; throws naming a file that holds none. */
export function readCRDs(paths: string[]): KubeObject[] {
  const files: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new Error(`startControlPlane: CRD path ${p} does not exist`);
    if (statSync(p).isDirectory()) {
      for (const f of readdirSync(p).sort()) if (/\.ya?ml$/.test(f)) files.push(join(p, f));
    } else files.push(p);
  }
  const out: KubeObject[] = [];
  for (const f of files) {
    const docs = loadAll(readFileSync(f, 'utf8')).filter(
      (d): d is KubeObject => !!d && typeof d === 'object',
    );
    const crds = docs.filter((d) => d.kind === 'CustomResourceDefinition');
    if (crds.length === 0) throw new Error(`startControlPlane: ${f} holds no CustomResourceDefinition`);
    out.push(...crds);
  }
  return out;
}

/** Create or update each CRD by server-side apply, then wait until all are Established. */
export async function installCRDs(
  client: KubeClient,
  crds: KubeObject[],
  fieldManager: string,
): Promise<void> {
  const rc = client.resource(CRDS);
  for (const crd of crds)
    await rc.patch(crd.metadata.name ?? '', crd, { type: 'apply', fieldManager, force: true });
  await waitForEstablished(client, crds);
}

async function waitForEstablished(client: KubeClient, crds: KubeObject[]): Promise<void> {
  const rc = client.resource(CRDS);
  for (const crd of crds) {
    const name = crd.metadata.name ?? '';
    await waitFor(
      async () => {
        const got = (await rc.get(name)) as KubeObject & {
          status?: { conditions?: { type: string; status: string }[] };
        };
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      { timeoutMs: 60_000, description: `CRD ${name} Established` },
    );
  }
}

/**
 * Starts etcd + kube-apiserver (+ kube-scheduler) on free loopback ports — building them from
 * Go modules into ~/.cache/ts-kcm the first time — installs the CRDs and waits until each is
 * Established.
 */
export async function startControlPlane(opts: StartControlPlaneOptions = {}): Promise<TestControlPlane> {
  const crds = readCRDs(opts.crds ?? []);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'ts-kcm-envtest-'));
  const cp = await ControlPlane.start({
    dir,
    ...(opts.scheduler ? { scheduler: true } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  const client = createKubeClient(loadKubeConfig({ kubeconfig: cp.kubeconfigPath }), {
    qps: 100,
    burst: 200,
  });
  const stop = async (): Promise<void> => {
    if (client instanceof RestKubeClient) await client.close().catch(() => undefined);
    await cp.stop();
  };
  try {
    const rc = client.resource(CRDS);
    for (const crd of crds) await rc.create(crd);
    await waitForEstablished(client, crds);
  } catch (err) {
    await stop();
    throw err;
  }
  return { kubeconfigPath: cp.kubeconfigPath, client, dir: cp.dir, stop };
}
