/**
 * Informer event throughput: 10,000 updates delivered to one handler.
 *
 * - in-memory: our informer fed by a ListWatcher whose watch yields the updates as fast as
 *   the pipeline takes them (each event parsed fresh from JSON): the ceiling of our own
 *   reflector → store → fan-out path.
 * - apiserver: 100 ConfigMaps in a fresh namespace, the informer synced, then the updates
 *   written as merge patches by 32 unthrottled writers; timed from the first write until the
 *   handler has seen every update. Ours, @kubernetes/client-node's makeInformer and
 *   client-go's SharedIndexInformer (test/bench/go/informer -events) run one after the other,
 *   each in a process of its own, so none shares an event loop with the writers; each is told
 *   the last versions on stdin and says on stdout when its handler has seen them. The writers'
 *   own rate is printed beside them, since a contender cannot deliver events faster than the
 *   apiserver accepts the writes.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, makeInformer, type V1ConfigMap } from '@kubernetes/client-node';
import type { KubeList, KubeObject } from '../../lib/api/index.js';
import type { KubeClient, ListOptions, WatchEvent, WatchOptions } from '../../lib/client/index.js';
import { createKubeClient, loadKubeConfig, Resources } from '../../lib/client/index.js';
import type { ListWatcher } from '../../lib/informer/index.js';
import { DefaultSharedIndexInformer } from '../../lib/informer/index.js';

export interface EventsBenchResult {
  scenario: string;
  updates: number;
  seconds: number;
  /** updates / seconds: how fast the handler caught up with the writes. */
  eventsPerSecond: number;
  /** Update calls the handler received (ts-kcm's fan-out may coalesce when a handler lags). */
  delivered: number;
  /** apiserver scenarios: the writers' own rate (updates / time until the last write returned). */
  writesPerSecond?: number;
}

const OBJECTS = 100;

/** Counts handler calls; resolves once the last resourceVersion of every object has been seen. */
class CatchUp {
  delivered = 0;
  private readonly seen = new Map<string, string>();
  private target?: Map<string, string>;
  private resolve!: () => void;
  readonly done = new Promise<void>((r) => (this.resolve = r));

  saw(obj: KubeObject, update = true): void {
    if (update) this.delivered++;
    this.seen.set(obj.metadata.name ?? '', obj.metadata.resourceVersion ?? '');
    this.check();
  }

  expect(target: Map<string, string>): void {
    this.target = target;
    this.check();
  }

  private check(): void {
    if (!this.target) return;
    for (const [k, rv] of this.target) if (this.seen.get(k) !== rv) return;
    this.resolve();
  }
}

function configMapJSON(ns: string, i: number, version: number): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `ev-${i}`,
      namespace: ns,
      uid: `7d1e0b3c-0000-4c3e-9a51-${String(i).padStart(12, '0')}`,
      resourceVersion: String(1000 + version),
      labels: { app: 'bench' },
    },
    data: { version: String(version), 'config.yaml': `replicas: ${version % 5}\nlogLevel: info\n` },
  });
}

/** Lists OBJECTS ConfigMaps, then its one watch yields `updates` MODIFIED events and idles. */
class UpdatesListWatch implements ListWatcher {
  /** `ready` resolves once the informer is synced and its handler idle; `onStart` marks the first event. */
  constructor(
    private readonly updates: number,
    private readonly ready: () => Promise<void>,
    private readonly onStart: () => void,
  ) {}

  async list(_opts: ListOptions = {}): Promise<KubeList> {
    const items = Array.from(
      { length: OBJECTS },
      (_, i) => JSON.parse(configMapJSON('bench', i, 0)) as KubeObject,
    );
    return { metadata: { resourceVersion: '1000' }, items };
  }

  watch(_opts: WatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent> {
    const { updates, ready, onStart } = this;
    return (async function* () {
      await ready();
      onStart();
      for (let v = 1; v <= updates; v++) {
        yield { type: 'MODIFIED', object: JSON.parse(configMapJSON('bench', v % OBJECTS, v)) as KubeObject };
      }
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    })();
  }
}

export async function oursInMemory(updates: number): Promise<EventsBenchResult> {
  const ac = new AbortController();
  let start = 0;
  const lw = new UpdatesListWatch(
    updates,
    async () => {
      await informer.whenSynced();
      await informer.whenHandlersIdle();
    },
    () => (start = performance.now()),
  );
  const informer = new DefaultSharedIndexInformer(Resources.configmaps, lw, {
    reflector: { useWatchList: false },
  });
  const catchUp = new CatchUp();
  const target = new Map<string, string>();
  for (let v = 1; v <= updates; v++) target.set(`ev-${v % OBJECTS}`, String(1000 + v));
  catchUp.expect(target);
  // A handler that lags behind the ring is handed the store's latest object instead of every
  // version (as an add if it never saw the object): count those too.
  informer.addEventHandler({
    onAdd: (obj) => catchUp.saw(obj, false),
    onUpdate: (_old, obj) => catchUp.saw(obj),
  });
  const running = informer.run(ac.signal);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 120_000)));
  const outcome = await Promise.race([catchUp.done, timeout]);
  clearTimeout(timer);
  const seconds = (performance.now() - start) / 1000;
  ac.abort();
  await running;
  if (outcome === 'timeout') throw new Error(`in-memory: not caught up after ${catchUp.delivered} updates`);
  return {
    scenario: 'ts-kcm informer, in-memory watch',
    updates,
    seconds,
    eventsPerSecond: updates / seconds,
    delivered: catchUp.delivered,
  };
}

/** 32 writers patch the ConfigMaps round-robin; resolves with the seconds until the last write returned. */
async function writeUpdates(client: KubeClient, ns: string, updates: number, tag: string): Promise<number> {
  const cms = client.resource(Resources.configmaps);
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < updates) {
        const v = next++;
        await cms.patch(
          `ev-${v % OBJECTS}`,
          { data: { version: `${tag}-${v}` } },
          { type: 'merge', namespace: ns },
        );
      }
    }),
  );
  return (performance.now() - start) / 1000;
}

/** A synced informer under test: resolves with its handler calls once it has seen `target`. */
interface Subscriber {
  caughtUp(target: Map<string, string>): Promise<number>;
  stop(): Promise<void>;
}

type Subscribe = () => Promise<Subscriber>;

/** Starts an informer whose handler calls `onUpdate` for every add and update; resolves with its stop. */
type StartInformer = (onUpdate: (obj: KubeObject) => void) => Promise<() => Promise<void>>;

const TS_CONTENDERS: Record<string, (kubeconfig: string, ns: string) => StartInformer> = {
  'ts-kcm': (kubeconfig, ns) => async (onUpdate) => {
    const client = createKubeClient(loadKubeConfig({ kubeconfig }), { qps: -1, userAgent: 'ts-kcm-bench' });
    const ac = new AbortController();
    const informer = new DefaultSharedIndexInformer(
      Resources.configmaps,
      client.resource(Resources.configmaps),
      {
        namespace: ns,
      },
    );
    informer.addEventHandler({ onAdd: (obj) => onUpdate(obj), onUpdate: (_old, obj) => onUpdate(obj) });
    const running = informer.run(ac.signal);
    await informer.whenSynced();
    return async () => {
      ac.abort();
      await running;
      await client.close();
    };
  },
  'client-node': (kubeconfig, ns) => async (onUpdate) => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const api = kc.makeApiClient(CoreV1Api);
    const informer = makeInformer<V1ConfigMap>(kc, `/api/v1/namespaces/${ns}/configmaps`, () =>
      api.listNamespacedConfigMap({ namespace: ns }),
    );
    informer.on('update', (obj) => onUpdate(obj as KubeObject));
    informer.on('error', () => undefined);
    await informer.start();
    return async () => {
      await informer.stop();
    };
  },
};

/**
 * A contender in a child process speaking the protocol of test/bench/go/informer -events:
 * `{"synced":true}` on stdout once synced, then the target versions as one JSON line on
 * stdin, answered by `{"delivered":N}` once the handler has seen them all.
 */
function inChild(command: string, args: string[]): Subscribe {
  return async () => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const next = async (): Promise<Record<string, unknown>> => {
      const { value, done } = await lines.next();
      if (done) throw new Error(`${command} exited (code ${child.exitCode})`);
      return JSON.parse(value as string) as Record<string, unknown>;
    };
    await next(); // {"synced":true}
    return {
      caughtUp: async (target) => {
        child.stdin.end(JSON.stringify(Object.fromEntries(target)) + '\n');
        return Number((await next()).delivered);
      },
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      },
    };
  };
}

/** This file run as `--events-child NAME KUBECONFIG NS`: one TypeScript contender, see inChild. */
async function child(name: string, kubeconfig: string, ns: string): Promise<void> {
  const catchUp = new CatchUp();
  const stop = await TS_CONTENDERS[name]!(kubeconfig, ns)((obj) => catchUp.saw(obj));
  process.stdout.write('{"synced":true}\n');
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const { value } = await lines.next();
  catchUp.expect(new Map(Object.entries(JSON.parse(value as string) as Record<string, string>)));
  await catchUp.done;
  process.stdout.write(JSON.stringify({ delivered: catchUp.delivered }) + '\n');
  await stop();
  process.exit(0);
}

async function measureLive(
  scenario: string,
  client: KubeClient,
  ns: string,
  updates: number,
  subscribe: Subscribe,
): Promise<EventsBenchResult> {
  const sub = await subscribe();
  try {
    const start = performance.now();
    const writeSeconds = await writeUpdates(client, ns, updates, scenario.slice(0, 6));
    // The last version of each object, as the apiserver has it once every write returned.
    const list = await client.resource(Resources.configmaps).list({ namespace: ns });
    const target = new Map(list.items.map((o) => [o.metadata.name ?? '', o.metadata.resourceVersion ?? '']));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 120_000)));
    const outcome = await Promise.race([sub.caughtUp(target), timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') throw new Error(`${scenario}: not caught up after 120 s`);
    const seconds = (performance.now() - start) / 1000;
    return {
      scenario,
      updates,
      seconds,
      eventsPerSecond: updates / seconds,
      delivered: outcome,
      writesPerSecond: updates / writeSeconds,
    };
  } finally {
    await sub.stop();
  }
}

export async function runEventsBench(opts: {
  kubeconfig: string;
  updates?: number;
  /** test/bench/go/informer built (buildGoProgram): adds client-go's row. */
  clientGoBinary?: string;
  print?: (line: string) => void;
}): Promise<EventsBenchResult[]> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const updates = opts.updates ?? 10_000;
  const results: EventsBenchResult[] = [await oursInMemory(updates)];
  const client = createKubeClient(loadKubeConfig({ kubeconfig: opts.kubeconfig }), {
    qps: -1,
    userAgent: 'ts-kcm-bench',
  });
  const ns = `events-bench-${Date.now().toString(36)}`;
  const namespaces = client.resource(Resources.namespaces);
  await namespaces.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  try {
    const cms = client.resource(Resources.configmaps);
    for (let i = 0; i < OBJECTS; i++)
      await cms.create(
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `ev-${i}` },
          data: { version: '0' },
        } as KubeObject,
        { namespace: ns },
      );
    const self = fileURLToPath(import.meta.url);
    const contenders: [string, Subscribe | undefined][] = [
      [
        'ts-kcm informer, apiserver watch',
        inChild(process.execPath, [self, '--events-child', 'ts-kcm', opts.kubeconfig, ns]),
      ],
      [
        '@kubernetes/client-node makeInformer, apiserver watch',
        inChild(process.execPath, [self, '--events-child', 'client-node', opts.kubeconfig, ns]),
      ],
      [
        'client-go SharedIndexInformer (Go), apiserver watch',
        opts.clientGoBinary
          ? inChild(opts.clientGoBinary, [`-kubeconfig=${opts.kubeconfig}`, `-namespace=${ns}`, '-events'])
          : undefined,
      ],
    ];
    for (const [scenario, subscribe] of contenders)
      if (subscribe) results.push(await measureLive(scenario, client, ns, updates, subscribe));
  } finally {
    await namespaces.delete(ns).catch(() => undefined);
    await (client as { close?: () => Promise<void> }).close?.();
  }
  print('');
  print(
    `informer: ${updates.toLocaleString('en-US')} updates, until one handler has seen the last version of every object`,
  );
  for (const r of results)
    print(
      `${r.scenario.padEnd(56)} ${r.seconds.toFixed(2).padStart(7)} s ${Math.round(r.eventsPerSecond).toString().padStart(8)} events/s, ${r.delivered} handler calls${r.writesPerSecond ? `  (writers ${Math.round(r.writesPerSecond)}/s)` : ''}`,
    );
  return results;
}

if (process.argv[2] === '--events-child') {
  const [, , , name, kubeconfig, ns] = process.argv;
  await child(name!, kubeconfig!, ns!);
}
