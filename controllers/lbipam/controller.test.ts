import { beforeEach, describe, expect, it } from '@jest/globals';
import { Resources, type IPAddress, type KubeObject } from '../../lib/index.js';
import {
  FakeClock,
  FakeEventRecorder,
  FakeKubeClient,
  reconcileOnce,
  type FakeAction,
} from '../../lib/testing.js';
import { serviceLBIPAMController } from './controller.js';
import {
  LB_CLASS,
  LB_FINALIZER,
  loadBalancerIPPools,
  RELEASED_AT_ANNOTATION,
  RELEASED_LABEL,
  type LBService,
  type LoadBalancerIPPool,
} from './types.js';

function service(
  name: string,
  extra: Partial<LBService['spec']> = {},
  meta: Partial<LBService['metadata']> = {},
): LBService {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'ns', ...meta },
    spec: { type: 'LoadBalancer', loadBalancerClass: LB_CLASS, ipFamilies: ['IPv4'], ...extra },
  };
}

function pool(
  name: string,
  addresses: string[],
  spec: Partial<LoadBalancerIPPool['spec']> = {},
): LoadBalancerIPPool {
  return {
    apiVersion: 'lb.ts-kcm.io/v1alpha1',
    kind: 'LoadBalancerIPPool',
    metadata: { name, generation: 1 },
    spec: { addresses, ...spec },
  };
}

function clusterIP(ip: string): IPAddress {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'IPAddress',
    metadata: { name: ip, labels: { 'ipaddress.kubernetes.io/managed-by': 'ipallocator.k8s.io' } },
    spec: { parentRef: { group: '', resource: 'services', namespace: 'ns', name: 'other' } },
  };
}

let clock: FakeClock;
let client: FakeKubeClient;
let recorder: FakeEventRecorder;
const HOLD = 10_000;

beforeEach(() => {
  clock = new FakeClock();
  client = new FakeKubeClient([], { clock, resources: [loadBalancerIPPools] });
  recorder = new FakeEventRecorder();
});

/** Everything in the fake apiserver, as a synced cache would hold it. */
function world(c: FakeKubeClient = client): KubeObject[] {
  return [Resources.services, Resources.ipAddresses, loadBalancerIPPools, Resources.namespaces].flatMap((r) =>
    c.tracker.list(r),
  );
}

function seed(...objs: KubeObject[]): void {
  for (const o of objs) client.tracker.add(o);
}

async function sync(
  key: string,
  opts: { c?: FakeKubeClient; objects?: KubeObject[]; signal?: AbortSignal } = {},
) {
  const c = opts.c ?? client;
  c.clearActions();
  const result = await reconcileOnce(serviceLBIPAMController, {
    client: c,
    objects: opts.objects ?? world(c),
    key,
    clock,
    recorder,
    ...(opts.signal ? { signal: opts.signal } : {}),
    flags: { 'lb-ipam-release-hold': HOLD, 'lb-ipam-default-class': 0, 'concurrent-lb-ipam-syncs': 5 },
  });
  return { result, writes: c.writeActions().map(brief) };
}

/** verb resource[/subresource] name, and for creates the IPAddress name. */
function brief(a: FakeAction): string {
  return `${a.verb} ${a.resource}${a.subresource ? `/${a.subresource}` : ''} ${a.name ?? (a.body as KubeObject | undefined)?.metadata?.name ?? ''}`.trim();
}

function ingressOf(name: string): string[] {
  const s = client.tracker.get(Resources.services, 'ns', name) as LBService;
  return (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '');
}

function addresses(): string[] {
  return client.tracker
    .list(Resources.ipAddresses)
    .map((o) => `${o.metadata.name}${(o.metadata.labels ?? {})[RELEASED_LABEL] ? ' (held)' : ''}`)
    .sort();
}

describe('service-lb-ipam-controller allocation', () => {
  it('adds the finalizer, creates the lowest free IPAddress, then writes status; a second sync writes nothing', async () => {
    seed(pool('p', ['10.9.0.0/30']), service('a'));
    const { writes } = await sync('ns/a');
    expect(writes).toEqual(['patch services a', 'create ipaddresses 10.9.0.0', 'patch services/status a']);
    expect(ingressOf('a')).toEqual(['10.9.0.0']);
    const svc = client.tracker.get(Resources.services, 'ns', 'a')!;
    expect(svc.metadata.finalizers).toEqual([LB_FINALIZER]);
    const ip = client.tracker.get(Resources.ipAddresses, undefined, '10.9.0.0') as IPAddress;
    expect(ip.metadata.labels).toEqual({
      'ipaddress.kubernetes.io/managed-by': 'lb-ipam.ts-kcm.io',
      'ipaddress.kubernetes.io/ip-family': 'IPv4',
    });
    expect(ip.spec?.parentRef).toEqual({ group: '', resource: 'services', namespace: 'ns', name: 'a' });
    expect((svc as LBService).status?.loadBalancer?.ingress).toEqual([{ ip: '10.9.0.0', ipMode: 'VIP' }]);
    expect(recorder.events.map((e) => e.reason)).toEqual(['EnsuringLoadBalancer', 'EnsuredLoadBalancer']);
    expect((await sync('ns/a')).writes).toEqual([]);
  });

  it('rolls back: when the status write fails, exactly one create then one delete, and the error returns', async () => {
    seed(pool('p', ['10.9.0.0/30']), service('a', {}, { finalizers: [LB_FINALIZER] }));
    client.prependReactor('patch', 'services', (a) => {
      if (a.subresource === 'status') throw new Error('etcd is sad');
      return undefined;
    });
    await expect(sync('ns/a')).rejects.toThrow(/etcd is sad/);
    expect(client.writeActions().map(brief)).toEqual([
      'create ipaddresses 10.9.0.0',
      'patch services/status a',
      'delete ipaddresses 10.9.0.0',
    ]);
    expect(addresses()).toEqual([]);
    expect(recorder.events.map((e) => e.reason)).toEqual(['EnsuringLoadBalancer', 'SyncLoadBalancerFailed']);
  });

  it('a sync cancelled mid-write (key moved, Lease lost): no Warning, and the next sync adopts its IPAddress', async () => {
    seed(pool('p', ['10.9.0.0/30']), service('a', {}, { finalizers: [LB_FINALIZER] }));
    const cancel = new AbortController();
    client.prependReactor('patch', 'services', (a) => {
      if (a.subresource !== 'status' || cancel.signal.aborted) return undefined;
      cancel.abort(new Error('key moved'));
      throw new Error('cancelled');
    });
    // The rollback is cancelled too (no write after the fence): the IPAddress names the Service
    // in its parentRef, so the next sync, on whichever replica, finds it owned and keeps it.
    await expect(sync('ns/a', { signal: cancel.signal })).rejects.toThrow(/key moved|cancelled/);
    expect(recorder.events.map((e) => e.reason)).toEqual(['EnsuringLoadBalancer']);
    expect(addresses()).toEqual(['10.9.0.0']);
    await sync('ns/a');
    expect(client.writeActions().map(brief)).toEqual(['patch services/status a']);
    expect(ingressOf('a')).toEqual(['10.9.0.0']);
    expect(addresses()).toEqual(['10.9.0.0']);
  });

  it('skips an address whose IPAddress already exists (AlreadyExists: a ClusterIP or another replica) to the next', async () => {
    seed(pool('p', ['10.9.0.0/30']), service('a', {}, { finalizers: [LB_FINALIZER] }), clusterIP('10.9.0.0'));
    // 10.9.0.1 was taken after our cache was filled: the cache does not show it.
    const cacheWithout = world();
    seed(clusterIP('10.9.0.1'));
    const { writes } = await sync('ns/a', { objects: cacheWithout });
    expect(writes).toEqual([
      'create ipaddresses 10.9.0.1',
      'create ipaddresses 10.9.0.2',
      'patch services/status a',
    ]);
    expect(ingressOf('a')).toEqual(['10.9.0.2']);
  });

  it('exhaustion: an AllocationFailed event a user can act on, a retried key, no write but the finalizer', async () => {
    seed(pool('p', ['10.9.0.0/31']), clusterIP('10.9.0.0'), clusterIP('10.9.0.1'), service('a'));
    await expect(sync('ns/a')).rejects.toThrow(/LoadBalancerIPPool p has no free IPv4 address/);
    expect(client.writeActions().map(brief)).toEqual(['patch services a']);
    const failed = recorder.events.find((e) => e.reason === 'AllocationFailed')!;
    expect(failed.type).toBe('Warning');
    expect(failed.note).toMatch(/add addresses to a pool or delete a LoadBalancer Service/);
  });

  it('a requested IP that is taken: event and retry, nothing created; a free requested IP is honoured', async () => {
    seed(
      pool('p', ['10.9.0.0/28']),
      clusterIP('10.9.0.5'),
      service(
        'a',
        {},
        { annotations: { 'lb.ts-kcm.io/load-balancer-ips': '10.9.0.5' }, finalizers: [LB_FINALIZER] },
      ),
      service('b', { loadBalancerIP: '10.9.0.7' }, { finalizers: [LB_FINALIZER] }),
    );
    await expect(sync('ns/a')).rejects.toThrow(
      /requested IP 10.9.0.5 is already taken by services ns\/other/,
    );
    expect(client.writeActions()).toEqual([]);
    expect(recorder.events.at(-1)?.reason).toBe('AllocationFailed');
    expect((await sync('ns/b')).writes).toEqual(['create ipaddresses 10.9.0.7', 'patch services/status b']);
  });

  it('bad input never crashes: wrong family, outside every pool, a pool with bad entries', async () => {
    seed(
      pool('bad', ['10.9.0.0/33']),
      pool('p', ['10.9.1.0/30']),
      service('v6', {}, { annotations: { 'lb.ts-kcm.io/load-balancer-ips': 'fd00::1' } }),
      service('out', {}, { annotations: { 'lb.ts-kcm.io/load-balancer-ips': '192.0.2.1' } }),
      service('named', {}, { annotations: { 'lb.ts-kcm.io/address-pool': 'bad' } }),
    );
    await expect(sync('ns/v6')).rejects.toThrow(/fd00::1 is IPv6, but the Service's ipFamilies are IPv4/);
    await expect(sync('ns/out')).rejects.toThrow(/192.0.2.1 is not in any ready LoadBalancerIPPool/);
    await expect(sync('ns/named')).rejects.toThrow(
      /LoadBalancerIPPool bad is not ready: "10.9.0.0\/33": prefix length/,
    );
    expect(addresses()).toEqual([]);
  });

  it('dual-stack: one IPAddress per family in ipFamilies order', async () => {
    seed(
      pool('p', ['10.9.0.0/30', 'fd00:9::/64']),
      service(
        'd',
        { ipFamilies: ['IPv6', 'IPv4'], ipFamilyPolicy: 'RequireDualStack' },
        { finalizers: [LB_FINALIZER] },
      ),
    );
    const { writes } = await sync('ns/d');
    expect(writes).toEqual([
      'create ipaddresses fd00:9::',
      'create ipaddresses 10.9.0.0',
      'patch services/status d',
    ]);
    expect(ingressOf('d')).toEqual(['fd00:9::', '10.9.0.0']);
    expect(
      (client.tracker.get(Resources.ipAddresses, undefined, 'fd00:9::') as IPAddress).metadata.labels?.[
        'ipaddress.kubernetes.io/ip-family'
      ],
    ).toBe('IPv6');
  });

  it('a sync whose caches have not caught up with its own last allocation does not allocate again', async () => {
    seed(pool('p', ['10.9.0.0/30']), service('a', {}, { finalizers: [LB_FINALIZER] }));
    const before = world(); // the cache as it was before the first sync's writes arrived
    await sync('ns/a');
    const { writes } = await sync('ns/a', { objects: before });
    expect(writes).toEqual(['patch services/status a']); // the same IP written again, nothing created
    expect(addresses()).toEqual(['10.9.0.0']);
  });
});

describe('concurrent workers', () => {
  it('two syncs at once pick different addresses: no request lost to AlreadyExists', async () => {
    seed(
      pool('p', ['10.9.0.0/28']),
      ...['a', 'b', 'c'].map((n) => service(n, {}, { finalizers: [LB_FINALIZER] })),
    );
    const cache = world();
    const run = (key: string) =>
      reconcileOnce(serviceLBIPAMController, {
        client,
        objects: cache,
        key,
        clock,
        recorder,
        flags: { 'lb-ipam-release-hold': HOLD },
      });
    client.clearActions();
    await Promise.all([run('ns/a'), run('ns/b'), run('ns/c')]);
    expect(
      client
        .writeActions()
        .filter((a) => a.verb === 'create')
        .map(brief)
        .sort(),
    ).toEqual(['create ipaddresses 10.9.0.0', 'create ipaddresses 10.9.0.1', 'create ipaddresses 10.9.0.2']);
  });
});

describe('service-lb-ipam-controller release and hold', () => {
  it('holds a released IP until the hold ends, then a pending Service gets it through a timed requeue', async () => {
    seed(pool('p', ['10.9.0.0/32']), service('a'), service('b', {}, { finalizers: [LB_FINALIZER] }));
    await sync('ns/a');
    expect(ingressOf('a')).toEqual(['10.9.0.0']);
    // a is deleted: the finalizer holds it until released.
    await client.resource(Resources.services).delete('a', { namespace: 'ns' });
    const released = await sync('ns/a');
    expect(released.writes).toEqual([
      'patch services/status a',
      'patch ipaddresses 10.9.0.0',
      'patch services a',
    ]);
    expect(released.result).toEqual({ requeueAfterMs: HOLD });
    expect(addresses()).toEqual(['10.9.0.0 (held)']);
    expect(client.tracker.get(Resources.services, 'ns', 'a')).toBeUndefined();
    const ip = client.tracker.get(Resources.ipAddresses, undefined, '10.9.0.0')!;
    expect(ip.metadata.annotations?.[RELEASED_AT_ANNOTATION]).toBe('2026-01-01T00:00:00.000000Z');
    expect(recorder.events.map((e) => e.reason)).toContain('DeletedLoadBalancer');

    // b waits for the hold: no create, a requeue at the hold's end.
    clock.advance(4_000);
    const waiting = await sync('ns/b');
    expect(waiting.writes).toEqual([]);
    expect(waiting.result).toEqual({ requeueAfterMs: 6_000 });
    expect(recorder.events.at(-1)?.note).toMatch(/1 released address\(es\) are held/);

    clock.advance(6_000);
    const got = await sync('ns/b');
    expect(got.writes).toEqual([
      'delete ipaddresses 10.9.0.0',
      'create ipaddresses 10.9.0.0',
      'patch services/status b',
    ]);
    expect(ingressOf('b')).toEqual(['10.9.0.0']);
  });

  it('the hold survives a restart: a new process (empty overlay, fresh cache) still waits, then deletes at the end', async () => {
    seed(pool('p', ['10.9.0.0/32']), service('a'));
    await sync('ns/a');
    await client.resource(Resources.services).delete('a', { namespace: 'ns' });
    await sync('ns/a');
    clock.advance(3_000);
    const restarted = new FakeKubeClient(world(), { clock, resources: [loadBalancerIPPools] });
    const r = await sync('ns/a', { c: restarted });
    expect(r.writes).toEqual([]);
    expect(r.result).toEqual({ requeueAfterMs: 7_000 });
    clock.advance(7_000);
    expect((await sync('ns/a', { c: restarted })).writes).toEqual(['delete ipaddresses 10.9.0.0']);
  });

  it('a class change releases (status first) and drops the finalizer; an unrelated Service is never touched', async () => {
    seed(
      pool('p', ['10.9.0.0/30']),
      service('a'),
      service('cloud', { loadBalancerClass: 'example.com/cloud' }, { finalizers: [LB_FINALIZER] }),
    );
    await sync('ns/a');
    const svc = client.tracker.get(Resources.services, 'ns', 'a') as LBService;
    client.tracker.update(
      Resources.services,
      { ...svc, spec: { ...svc.spec, loadBalancerClass: 'example.com/cloud' } } as LBService,
      'ns',
    );
    const { writes } = await sync('ns/a');
    expect(writes).toEqual(['patch services/status a', 'patch ipaddresses 10.9.0.0', 'patch services a']);
    expect(ingressOf('a')).toEqual([]);
    expect((await sync('ns/cloud')).writes).toEqual([]);
  });

  it("a type change away from LoadBalancer with no IP ever allocated drops our finalizer (managedFields), never another manager's", async () => {
    // The apiserver drops loadBalancerClass with the type: the cache no longer says the Service was ours.
    const finalizerBy = (manager: string) => ({
      manager,
      operation: 'Update',
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:metadata': { 'f:finalizers': { '.': {}, [`v:"${LB_FINALIZER}"`]: {} } } },
    });
    const exClass = (name: string, manager: string) =>
      service(
        name,
        { type: 'ClusterIP', loadBalancerClass: undefined },
        { finalizers: [LB_FINALIZER], managedFields: [finalizerBy(manager)] },
      );
    seed(
      pool('p', ['10.9.0.0/30']),
      exClass('a', 'service-lb-ipam-controller'),
      exClass('cloud', 'cloud-controller'),
    );
    const { writes } = await sync('ns/a');
    expect(writes).toEqual(['patch services a']);
    expect(client.tracker.get(Resources.services, 'ns', 'a')?.metadata.finalizers ?? []).toEqual([]);
    expect((await sync('ns/cloud')).writes).toEqual([]);
    expect(client.tracker.get(Resources.services, 'ns', 'cloud')?.metadata.finalizers).toEqual([
      LB_FINALIZER,
    ]);
  });

  it('an IP no longer in any pool is released; one still in an edited pool is kept', async () => {
    seed(pool('p', ['10.9.0.0/30']), service('a'));
    await sync('ns/a');
    const p = client.tracker.get(loadBalancerIPPools, undefined, 'p') as LoadBalancerIPPool;
    client.tracker.update(
      loadBalancerIPPools,
      { ...p, spec: { addresses: ['10.9.0.0/29'] } } as LoadBalancerIPPool,
      undefined,
    );
    expect((await sync('ns/a')).writes).toEqual([]);
    client.tracker.update(
      loadBalancerIPPools,
      {
        ...p,
        metadata: { ...p.metadata, resourceVersion: undefined },
        spec: { addresses: ['10.9.1.0/30'] },
      } as LoadBalancerIPPool,
      undefined,
    );
    const { writes } = await sync('ns/a');
    expect(writes).toEqual([
      'patch services/status a',
      'patch ipaddresses 10.9.0.0',
      'create ipaddresses 10.9.1.0',
      'patch services/status a',
    ]);
    expect(ingressOf('a')).toEqual(['10.9.1.0']);
  });

  it('restart rebuild: an IPAddress created before a crash, status never written, is adopted, not duplicated', async () => {
    seed(pool('p', ['10.9.0.0/30']), service('a', {}, { finalizers: [LB_FINALIZER] }));
    client.prependReactor('patch', 'services', (a) => {
      if (a.subresource === 'status') throw new Error('the process died here');
      return undefined;
    });
    // The crash: create done, status not, and no rollback ran (the process was gone).
    const crashed = new FakeKubeClient(world(), { clock, resources: [loadBalancerIPPools] });
    await crashed.resource(Resources.ipAddresses).create({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'IPAddress',
      metadata: {
        name: '10.9.0.1',
        labels: {
          'ipaddress.kubernetes.io/managed-by': 'lb-ipam.ts-kcm.io',
          'ipaddress.kubernetes.io/ip-family': 'IPv4',
        },
      },
      spec: { parentRef: { group: '', resource: 'services', namespace: 'ns', name: 'a' } },
    } as IPAddress);
    const restarted = new FakeKubeClient(world(crashed), { clock, resources: [loadBalancerIPPools] });
    const { writes } = await sync('ns/a', { c: restarted });
    expect(writes).toEqual(['patch services/status a']);
    const s = restarted.tracker.get(Resources.services, 'ns', 'a') as LBService;
    expect(s.status?.loadBalancer?.ingress).toEqual([{ ip: '10.9.0.1', ipMode: 'VIP' }]);
  });
});

describe('pool status', () => {
  it('counts allocated and available per family, Ready, and Overlaps naming the older pool', async () => {
    seed(pool('a', ['10.9.0.0/30', 'fd00::/64']));
    clock.advance(1_000);
    seed(pool('b', ['10.9.0.2-10.9.0.9']), service('s'));
    await sync('ns/s');
    await sync('a');
    await sync('b');
    const a = client.tracker.get(loadBalancerIPPools, undefined, 'a') as LoadBalancerIPPool;
    expect(a.status?.allocated).toEqual({ ipv4: 1, ipv6: 0 });
    expect(a.status?.available).toEqual({ ipv4: '3', ipv6: '18446744073709551616' });
    expect(a.status?.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'True' });
    const b = client.tracker.get(loadBalancerIPPools, undefined, 'b') as LoadBalancerIPPool;
    expect(b.status?.conditions?.[0]).toMatchObject({
      type: 'Ready',
      status: 'False',
      reason: 'Overlaps',
      message: '10.9.0.2-10.9.0.9 overlaps 10.9.0.0/30 of LoadBalancerIPPool a',
    });
    expect((await sync('a')).writes).toEqual([]);
  });
});

describe('pool status under churn', () => {
  it('writes a pool status at most once a second; the rest of a burst folds into a timed requeue', async () => {
    seed(pool('p', ['10.9.0.0/28']), service('a'), service('b'));
    await sync('ns/a');
    expect((await sync('p')).writes).toEqual(['patch loadbalancerippools/status p']);
    await sync('ns/b');
    const folded = await sync('p');
    expect(folded.writes).toEqual([]);
    expect(folded.result).toEqual({ requeueAfterMs: 1_000 });
    clock.advance(1_000);
    expect((await sync('p')).writes).toEqual(['patch loadbalancerippools/status p']);
    const p = client.tracker.get(loadBalancerIPPools, undefined, 'p') as LoadBalancerIPPool;
    expect(p.status?.allocated).toEqual({ ipv4: 2, ipv6: 0 });
  });
});
