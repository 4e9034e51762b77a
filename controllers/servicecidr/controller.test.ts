import { beforeEach, describe, expect, it } from '@jest/globals';
import type { IPAddress, ServiceCIDR } from '../../lib/api/index.js';
import { ApiError, FakeKubeClient, Resources } from '../../lib/client/index.js';
import { FakeClock } from '../../lib/clock/index.js';
import { FakeEventRecorder } from '../../lib/events/index.js';
import { DeletedFinalStateUnknown, FakeSharedIndexInformer } from '../../lib/informer/index.js';
import { MemoryLogger, type LogLine } from '../../lib/log/index.js';
import { RecordingQueue } from '../../lib/workqueue/index.js';
import {
  DELETION_GRACE_PERIOD_MS,
  READY_MESSAGE,
  SERVICE_CIDR_FINALIZER,
  ServiceCIDRController,
  TERMINATING_MESSAGE,
} from './controller.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const NOW_TEXT = '2026-01-01T00:00:00Z';

// ---- fixtures ----

function makeServiceCIDR(name: string, ...cidrs: string[]): ServiceCIDR {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', metadata: { name }, spec: { cidrs } };
}

function withFinalizer(sc: ServiceCIDR): ServiceCIDR {
  return { ...sc, metadata: { ...sc.metadata, finalizers: [SERVICE_CIDR_FINALIZER] } };
}

function deletedAt(sc: ServiceCIDR, ms: number): ServiceCIDR {
  return {
    ...sc,
    metadata: { ...sc.metadata, deletionTimestamp: new Date(ms).toISOString().replace('.000Z', 'Z') },
  };
}

/** Finalizer present, deletion requested more than the grace period ago. */
function deletedLongAgo(name: string, ...cidrs: string[]): ServiceCIDR {
  return deletedAt(withFinalizer(makeServiceCIDR(name, ...cidrs)), NOW - DELETION_GRACE_PERIOD_MS - 1000);
}

function readyAs(sc: ServiceCIDR, status: 'True' | 'False', reason: string, message: string): ServiceCIDR {
  return {
    ...sc,
    status: { conditions: [{ type: 'Ready', status, reason, message, lastTransitionTime: NOW_TEXT }] },
  };
}

function makeIPAddress(name: string, labels?: Record<string, string>): IPAddress {
  const family = name.includes(':') ? 'IPv6' : 'IPv4';
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'IPAddress',
    metadata: {
      name,
      labels: labels ?? {
        'ipaddress.kubernetes.io/ip-family': family,
        'ipaddress.kubernetes.io/managed-by': 'ipallocator.k8s.io',
      },
    },
    spec: { parentRef: { group: '', resource: 'services', namespace: 'default', name: 'svc' } },
  };
}

// ---- test doubles: a primed cache with captured handlers, and a queue that records ----

interface Harness {
  controller: ServiceCIDRController;
  client: FakeKubeClient;
  cidrInformer: FakeSharedIndexInformer<ServiceCIDR>;
  ipInformer: FakeSharedIndexInformer<IPAddress>;
  queue: RecordingQueue;
  recorder: FakeEventRecorder;
  clock: FakeClock;
  logs: LogLine[];
  logger: MemoryLogger;
}

function newHarness(cidrs: ServiceCIDR[] = [], ips: IPAddress[] = []): Harness {
  const clock = new FakeClock(NOW);
  const client = new FakeKubeClient([...cidrs, ...ips], { clock });
  const cidrInformer = new FakeSharedIndexInformer<ServiceCIDR>(Resources.serviceCIDRs);
  const ipInformer = new FakeSharedIndexInformer<IPAddress>(Resources.ipAddresses);
  for (const sc of cidrs) cidrInformer.getIndexer().add(sc);
  for (const ip of ips) ipInformer.getIndexer().add(ip);
  const queue = new RecordingQueue();
  const recorder = new FakeEventRecorder();
  const recordingLogger = new MemoryLogger();
  const logs = recordingLogger.lines;
  const controller = new ServiceCIDRController({
    client,
    serviceCIDRInformer: cidrInformer,
    ipAddressInformer: ipInformer,
    queue,
    recorder,
    logger: recordingLogger,
    clock,
  });
  return {
    controller,
    client,
    cidrInformer,
    ipInformer,
    queue,
    recorder,
    clock,
    logs,
    logger: recordingLogger,
  };
}

// ---- expected actions ----

const addFinalizer = (name: string) => ({
  verb: 'patch',
  resource: 'servicecidrs',
  name,
  patchType: 'strategic',
  body: { metadata: { finalizers: [SERVICE_CIDR_FINALIZER] } },
});

const removeFinalizer = (name: string) => ({
  verb: 'patch',
  resource: 'servicecidrs',
  name,
  patchType: 'strategic',
  body: { metadata: { '$deleteFromPrimitiveList/finalizers': [SERVICE_CIDR_FINALIZER] } },
});

const applyReady = (name: string, status: 'True' | 'False', reason: string, message: string) => ({
  verb: 'patch',
  resource: 'servicecidrs',
  name,
  subresource: 'status',
  patchType: 'apply',
  fieldManager: 'service-cidr-controller',
  force: true,
  body: {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'ServiceCIDR',
    metadata: { name },
    status: { conditions: [{ type: 'Ready', status, reason, message, lastTransitionTime: NOW_TEXT }] },
  },
});
const applyReadyTrue = (name: string) => applyReady(name, 'True', '', READY_MESSAGE);
const applyTerminating = (name: string) => applyReady(name, 'False', 'Terminating', TERMINATING_MESSAGE);

// ---- sync ----

describe('sync', () => {
  const cases: { name: string; cidrs?: ServiceCIDR[]; ips?: IPAddress[]; key: string; actions: object[] }[] =
    [
      { name: 'no objects: no API calls', key: 'missing', actions: [] },
      {
        name: 'the default ServiceCIDR gets the finalizer, then Ready=True',
        cidrs: [makeServiceCIDR('kubernetes', '192.168.0.0/24', '2001:db2::/64')],
        key: 'kubernetes',
        actions: [addFinalizer('kubernetes'), applyReadyTrue('kubernetes')],
      },
      {
        name: 'a new ServiceCIDR gets the finalizer, then Ready=True',
        cidrs: [makeServiceCIDR('no-finalizer', '192.168.0.0/24', '2001:db2::/64')],
        key: 'no-finalizer',
        actions: [addFinalizer('no-finalizer'), applyReadyTrue('no-finalizer')],
      },
      {
        name: 'finalizer present and Ready=True already: nothing to write',
        cidrs: [readyAs(withFinalizer(makeServiceCIDR('steady', '10.0.0.0/24')), 'True', '', READY_MESSAGE)],
        key: 'steady',
        actions: [],
      },
      {
        name: "the apiserver's own Ready=True message is replaced by ours (finalizer already there)",
        cidrs: [
          readyAs(
            withFinalizer(makeServiceCIDR('kubernetes', '10.0.0.0/24')),
            'True',
            '',
            'Kubernetes default Service CIDR is ready',
          ),
        ],
        key: 'kubernetes',
        actions: [applyReadyTrue('kubernetes')],
      },
      {
        name: 'Ready=False left over from a cancelled deletion goes back to True',
        cidrs: [
          readyAs(
            withFinalizer(makeServiceCIDR('back', '10.0.0.0/24')),
            'False',
            'Terminating',
            TERMINATING_MESSAGE,
          ),
        ],
        key: 'back',
        actions: [applyReadyTrue('back')],
      },
      {
        name: 'deleted more than 10 s ago with no IPs: exactly one patch removing the finalizer',
        cidrs: [deletedLongAgo('deleted-cidr', '192.168.0.0/24', '2001:db2::/64')],
        key: 'deleted-cidr',
        actions: [removeFinalizer('deleted-cidr')],
      },
      {
        name: 'deleted long ago and finalizer already gone: nothing to write',
        cidrs: [deletedAt(makeServiceCIDR('gone', '192.168.0.0/24'), NOW - 60_000)],
        key: 'gone',
        actions: [],
      },
      {
        name: 'deleted just now: no call at all',
        cidrs: [
          deletedAt(withFinalizer(makeServiceCIDR('deleting-cidr', '192.168.0.0/24', '2001:db2::/64')), NOW),
        ],
        key: 'deleting-cidr',
        actions: [],
      },
      {
        name: 'deleted with an IPv4 address inside: status write only',
        cidrs: [deletedLongAgo('deleted-cidr', '192.168.0.0/24', '2001:db2::/64')],
        ips: [makeIPAddress('192.168.0.1')],
        key: 'deleted-cidr',
        actions: [applyTerminating('deleted-cidr')],
      },
      {
        name: 'deleted with an IPv6 address inside: status write only',
        cidrs: [deletedLongAgo('deleted-cidr', '192.168.0.0/24', '2001:db2::/64')],
        ips: [makeIPAddress('2001:db2::1')],
        key: 'deleted-cidr',
        actions: [applyTerminating('deleted-cidr')],
      },
      {
        name: 'deleted, blocked, and Ready=False/Terminating already: nothing to write',
        cidrs: [
          readyAs(
            deletedLongAgo('deleted-cidr', '192.168.0.0/24'),
            'False',
            'Terminating',
            TERMINATING_MESSAGE,
          ),
        ],
        ips: [makeIPAddress('192.168.0.1')],
        key: 'deleted-cidr',
        actions: [],
      },
      {
        name: 'deleted just now but blocked: status write, no wait',
        cidrs: [deletedAt(withFinalizer(makeServiceCIDR('deleting-cidr', '192.168.0.0/24')), NOW)],
        ips: [makeIPAddress('192.168.0.1')],
        key: 'deleting-cidr',
        actions: [applyTerminating('deleting-cidr')],
      },
      {
        name: 'an equal range covers it (IPv4 IP): finalizer removed',
        cidrs: [
          deletedLongAgo('deleted-cidr', '192.168.0.0/24', '2001:db2::/64'),
          makeServiceCIDR('overlapping', '192.168.0.0/24', '2001:db2::/64'),
        ],
        ips: [makeIPAddress('192.168.0.1')],
        key: 'deleted-cidr',
        actions: [removeFinalizer('deleted-cidr')],
      },
      {
        name: 'a larger range covers it (IPv4 IP): finalizer removed',
        cidrs: [
          deletedLongAgo('deleted-cidr', '192.168.0.0/24', '2001:db2::/64'),
          makeServiceCIDR('overlapping', '192.168.0.0/16', '2001:db2::/64'),
        ],
        ips: [makeIPAddress('192.168.0.1')],
        key: 'deleted-cidr',
        actions: [removeFinalizer('deleted-cidr')],
      },
      {
        name: 'an unrelated range only (IPv4 IP): status write',
        cidrs: [
          deletedLongAgo('deleted-cidr', '192.168.0.0/24', '2001:db2::/64'),
          makeServiceCIDR('overlapping', '192.168.255.0/26', '2001:db2::/64'),
        ],
        ips: [makeIPAddress('192.168.0.1')],
        key: 'deleted-cidr',
        actions: [applyTerminating('deleted-cidr')],
      },
      {
        name: 'a smaller range that misses the IP (IPv4): status write',
        cidrs: [
          deletedLongAgo('deleted-cidr', '192.168.0.0/24'),
          makeServiceCIDR('smaller', '192.168.0.0/28'),
        ],
        ips: [makeIPAddress('192.168.0.23')],
        key: 'deleted-cidr',
        actions: [applyTerminating('deleted-cidr')],
      },
      {
        name: 'a smaller range that holds the IP (IPv4): finalizer removed (no orphan)',
        cidrs: [
          deletedLongAgo('deleted-cidr', '192.168.0.0/24'),
          makeServiceCIDR('smaller', '192.168.0.0/26'),
        ],
        ips: [makeIPAddress('192.168.0.23')],
        key: 'deleted-cidr',
        actions: [removeFinalizer('deleted-cidr')],
      },
      {
        name: 'an equal range covers it (IPv6 IP): finalizer removed',
        cidrs: [
          deletedLongAgo('deleted-cidr', '192.168.0.0/24', '2001:db2::/64'),
          makeServiceCIDR('overlapping', '192.168.0.0/24', '2001:db2::/64'),
        ],
        ips: [makeIPAddress('2001:db2::1')],
        key: 'deleted-cidr',
        actions: [removeFinalizer('deleted-cidr')],
      },
      {
        name: 'a larger range covers it (IPv6 IP): finalizer removed',
        cidrs: [
          deletedLongAgo('deleted-cidr', '192.168.0.0/24', '2001:db2::/64'),
          makeServiceCIDR('overlapping', '192.168.0.0/16', '2001:db2::/48'),
        ],
        ips: [makeIPAddress('2001:db2::1')],
        key: 'deleted-cidr',
        actions: [removeFinalizer('deleted-cidr')],
      },
      {
        name: 'an unrelated range only (IPv6 IP): status write',
        cidrs: [
          deletedLongAgo('deleted-cidr', '192.168.0.0/24', '2001:db2::/64'),
          makeServiceCIDR('overlapping', '192.168.255.0/26', '2001:db2:a:b::/64'),
        ],
        ips: [makeIPAddress('2001:db2::1')],
        key: 'deleted-cidr',
        actions: [applyTerminating('deleted-cidr')],
      },
      {
        name: 'the covering range is itself being deleted: still counts as a parent',
        cidrs: [
          deletedLongAgo('deleted-cidr', '10.0.0.0/24'),
          deletedAt(withFinalizer(makeServiceCIDR('parent', '10.0.0.0/16')), NOW),
        ],
        ips: [makeIPAddress('10.0.0.5')],
        key: 'deleted-cidr',
        actions: [removeFinalizer('deleted-cidr')],
      },
      {
        name: 'IPs not allocated by the apiserver never block',
        cidrs: [deletedLongAgo('deleted-cidr', '10.0.0.0/24')],
        ips: [
          makeIPAddress('10.0.0.5', {
            'ipaddress.kubernetes.io/ip-family': 'IPv4',
            'ipaddress.kubernetes.io/managed-by': 'someone-else',
          }),
        ],
        key: 'deleted-cidr',
        actions: [removeFinalizer('deleted-cidr')],
      },
      {
        name: 'the network and broadcast addresses never block',
        cidrs: [deletedLongAgo('deleted-cidr', '10.0.0.0/24')],
        ips: [makeIPAddress('10.0.0.0'), makeIPAddress('10.0.0.255')],
        key: 'deleted-cidr',
        actions: [removeFinalizer('deleted-cidr')],
      },
      {
        name: 'the IPv6 all-ones address blocks',
        cidrs: [deletedLongAgo('deleted-cidr', '2001:db2::/64')],
        ips: [makeIPAddress('2001:db2::ffff:ffff:ffff:ffff')],
        key: 'deleted-cidr',
        actions: [applyTerminating('deleted-cidr')],
      },
      {
        name: 'an IPAddress whose name does not parse is skipped',
        cidrs: [deletedLongAgo('deleted-cidr', '10.0.0.0/24')],
        ips: [
          makeIPAddress('not-an-ip', {
            'ipaddress.kubernetes.io/ip-family': 'IPv4',
            'ipaddress.kubernetes.io/managed-by': 'ipallocator.k8s.io',
          }),
        ],
        key: 'deleted-cidr',
        actions: [removeFinalizer('deleted-cidr')],
      },
      {
        name: 'a ServiceCIDR whose spec does not parse still gets finalizer and Ready (bad CIDRs ignored)',
        cidrs: [makeServiceCIDR('bad', 'nonsense', '10.0.0.0/33')],
        key: 'bad',
        actions: [addFinalizer('bad'), applyReadyTrue('bad')],
      },
    ];

  it.each(cases)('$name', async ({ cidrs, ips, key, actions }) => {
    const h = newHarness(cidrs, ips);
    await h.controller.sync(key);
    expect(h.client.actions).toEqual(actions);
    expect(h.queue.added).toEqual([]);
    expect(h.recorder.events).toEqual([]);
  });

  it('within the grace period asks to be requeued for exactly the time left, measured from deletionTimestamp', async () => {
    const h = newHarness([deletedAt(withFinalizer(makeServiceCIDR('deleting', '10.0.0.0/24')), NOW - 3000)]);
    await expect(h.controller.sync('deleting')).resolves.toEqual({ requeueAfterMs: 7000 });
    expect(h.client.actions).toEqual([]);

    h.clock.advance(6999);
    await expect(h.controller.sync('deleting')).resolves.toEqual({ requeueAfterMs: 1 });
    expect(h.client.actions).toEqual([]);

    h.clock.advance(1);
    await expect(h.controller.sync('deleting')).resolves.toBeUndefined();
    expect(h.client.actions).toEqual([removeFinalizer('deleting')]);
  });

  it('deleted just now: requeue after the full 10 s', async () => {
    const h = newHarness([deletedAt(withFinalizer(makeServiceCIDR('deleting', '10.0.0.0/24')), NOW)]);
    await expect(h.controller.sync('deleting')).resolves.toEqual({ requeueAfterMs: 10_000 });
  });

  it('an unreadable deletionTimestamp waits the full grace period rather than none', async () => {
    const sc = withFinalizer(makeServiceCIDR('odd', '10.0.0.0/24'));
    sc.metadata.deletionTimestamp = 'yesterday-ish';
    const h = newHarness([sc]);
    await expect(h.controller.sync('odd')).resolves.toEqual({ requeueAfterMs: 10_000 });
    expect(h.client.actions).toEqual([]);
  });

  it('a finalizer patch answered NotFound is ignored', async () => {
    const h = newHarness([deletedLongAgo('vanished', '10.0.0.0/24')]);
    h.client.prependReactor('patch', 'servicecidrs', (a) => {
      throw new ApiError({
        code: 404,
        message: `servicecidrs "${a.name}" not found`,
        verb: 'patch',
        resource: 'servicecidrs',
      });
    });
    await expect(h.controller.sync('vanished')).resolves.toBeUndefined();
    expect(h.client.actions).toEqual([removeFinalizer('vanished')]);
  });

  it('a failing finalizer patch is returned for a rate-limited retry, before any status write', async () => {
    const h = newHarness([makeServiceCIDR('new', '10.0.0.0/24')]);
    h.client.prependReactor('patch', 'servicecidrs', () => {
      throw new ApiError({ code: 500, message: 'boom', verb: 'patch', resource: 'servicecidrs' });
    });
    await expect(h.controller.sync('new')).rejects.toThrow('boom');
    expect(h.client.actions).toEqual([addFinalizer('new')]);
    expect(h.recorder.events).toEqual([]);
  });

  it('failing to set Ready=True records a Warning event and returns the error', async () => {
    const sc = withFinalizer(makeServiceCIDR('unlucky', '10.0.0.0/24'));
    const h = newHarness([sc]);
    h.client.prependReactor('patch', 'servicecidrs', (a) => {
      if (a.subresource === 'status')
        throw new ApiError({ code: 500, message: 'etcd is sad', verb: 'patch', resource: 'servicecidrs' });
      return undefined;
    });
    await expect(h.controller.sync('unlucky')).rejects.toThrow('etcd is sad');
    expect(h.client.actions).toEqual([applyReadyTrue('unlucky')]);
    expect(h.recorder.events).toEqual([
      {
        regarding: sc,
        type: 'Warning',
        reason: 'KubernetesServiceCIDRError',
        action: 'UpdateStatus',
        note: 'The ServiceCIDR Status can not be set to Ready=True',
      },
    ]);
  });

  it('a Ready=True write cancelled by the signal (key moved, Lease lost) returns the error without an event', async () => {
    const h = newHarness([withFinalizer(makeServiceCIDR('moved', '10.0.0.0/24'))]);
    const cancel = new AbortController();
    h.client.prependReactor('patch', 'servicecidrs', () => {
      cancel.abort(new Error('key moved'));
      throw new Error('cancelled');
    });
    await expect(h.controller.sync('moved', cancel.signal)).rejects.toThrow('cancelled');
    expect(h.recorder.events).toEqual([]);
  });

  it('a failing Ready=False write returns the error without an event', async () => {
    const h = newHarness([deletedLongAgo('blocked', '10.0.0.0/24')], [makeIPAddress('10.0.0.9')]);
    h.client.prependReactor('patch', 'servicecidrs', () => {
      throw new ApiError({ code: 500, message: 'nope', verb: 'patch', resource: 'servicecidrs' });
    });
    await expect(h.controller.sync('blocked')).rejects.toThrow('nope');
    expect(h.recorder.events).toEqual([]);
  });
});

// ---- canDelete ----

describe('canDelete', () => {
  const target = () => makeServiceCIDR('kubernetes', '192.168.0.0/24', '2001:db2::/64');
  it.each([
    { name: 'empty cache', cidrs: [] as ServiceCIDR[], ips: [] as IPAddress[], want: true },
    { name: 'CIDR and no IPs', cidrs: [target()], ips: [], want: true },
    { name: 'CIDR with IPs', cidrs: [target()], ips: [makeIPAddress('192.168.0.24')], want: false },
    { name: 'CIDR without IPs inside', cidrs: [target()], ips: [makeIPAddress('192.168.1.24')], want: true },
    { name: 'IPv4 network address', cidrs: [target()], ips: [makeIPAddress('192.168.0.0')], want: true },
    { name: 'IPv4 broadcast address', cidrs: [target()], ips: [makeIPAddress('192.168.0.255')], want: true },
    {
      name: 'IPv6 all-ones address',
      cidrs: [target()],
      ips: [makeIPAddress('2001:0db2::ffff:ffff:ffff:ffff')],
      want: false,
    },
    {
      name: 'same range elsewhere and IPs',
      cidrs: [target(), makeServiceCIDR('overlapping', '192.168.0.0/24', '2001:db2::/64')],
      ips: [makeIPAddress('192.168.0.23')],
      want: true,
    },
    {
      name: 'smaller range holding the IP',
      cidrs: [target(), makeServiceCIDR('overlapping', '192.168.0.0/26', '2001:db2::/64')],
      ips: [makeIPAddress('192.168.0.23')],
      want: true,
    },
    {
      name: 'smaller range, IP orphaned',
      cidrs: [target(), makeServiceCIDR('overlapping', '192.168.0.0/28', '2001:db2::/64')],
      ips: [makeIPAddress('192.168.0.23')],
      want: false,
    },
    {
      name: 'larger range and IPs',
      cidrs: [target(), makeServiceCIDR('overlapping', '192.168.0.0/16', '2001:db2::/64')],
      ips: [makeIPAddress('192.168.0.23')],
      want: true,
    },
    {
      name: 'only one of the two families covered, IPv6 IP orphaned',
      cidrs: [target(), makeServiceCIDR('v4-parent', '192.168.0.0/16')],
      ips: [makeIPAddress('2001:db2::7')],
      want: false,
    },
  ])('$name -> $want', ({ cidrs, ips, want }) => {
    const h = newHarness(cidrs, ips);
    expect(h.controller.canDelete(target())).toBe(want);
    expect(h.client.actions).toEqual([]);
  });
});

// ---- event to key ----

describe('event handlers', () => {
  let h: Harness;
  const sorted = (keys: string[]) => [...new Set(keys)].sort();

  beforeEach(() => {
    h = newHarness(
      [
        makeServiceCIDR('kubernetes', '192.168.0.0/24', '2001:db2::/64'),
        makeServiceCIDR('overlapping', '192.168.0.0/24', '2001:db2::/64'),
        makeServiceCIDR('overlapping2', '192.168.0.0/26', '2001:db2::/96'),
        makeServiceCIDR('unrelated', '10.0.0.0/24'),
        makeServiceCIDR('unrelated2', '10.0.0.0/16'),
      ],
      [],
    );
  });

  const cidrHandler = () => h.cidrInformer.handlers[0]!;
  const ipHandler = () => h.ipInformer.handlers[0]!;

  it('registers exactly one handler per informer; IPAddress updates are ignored', () => {
    expect(h.cidrInformer.handlers).toHaveLength(1);
    expect(h.ipInformer.handlers).toHaveLength(1);
    expect(ipHandler().onUpdate).toBeUndefined();
  });

  it('ServiceCIDR added: itself and every overlapping ServiceCIDR', () => {
    const added = makeServiceCIDR('new', '192.168.0.0/25');
    cidrHandler().onAdd!(added, false);
    expect(sorted(h.queue.added)).toEqual(['kubernetes', 'new', 'overlapping', 'overlapping2']);
  });

  it('ServiceCIDR added that contains others: those too', () => {
    cidrHandler().onAdd!(makeServiceCIDR('big', '10.0.0.0/8'), false);
    expect(sorted(h.queue.added)).toEqual(['big', 'unrelated', 'unrelated2']);
  });

  it('ServiceCIDR added with a spec that does not parse: only itself, logged', () => {
    cidrHandler().onAdd!(makeServiceCIDR('bad', 'nonsense'), false);
    expect(h.queue.added).toEqual(['bad']);
    expect(h.logs.filter((l) => l.level === 'warn').map((l) => l.meta)).toEqual([
      { serviceCIDR: 'bad', cidr: 'nonsense' },
    ]);
  });

  it('ServiceCIDR updated or deleted (also via a tombstone): its own name only', () => {
    const sc = makeServiceCIDR('kubernetes', '192.168.0.0/24');
    cidrHandler().onUpdate!(sc, sc);
    cidrHandler().onDelete!(sc);
    cidrHandler().onDelete!(
      new DeletedFinalStateUnknown('unrelated', makeServiceCIDR('unrelated', '10.0.0.0/24')),
    );
    expect(h.queue.added).toEqual(['kubernetes', 'kubernetes', 'unrelated']);
  });

  it.each([
    ['192.168.0.23', ['kubernetes', 'overlapping', 'overlapping2']],
    ['192.168.0.0', []], // network address of all three
    ['192.168.0.63', ['kubernetes', 'overlapping']], // broadcast of the /26
    ['2001:db2::', []],
    ['2001:0db2::ffff:ffff:ffff:ffff', ['kubernetes', 'overlapping']], // IPv6 all-ones is contained
    ['10.0.0.7', ['unrelated', 'unrelated2']],
    ['172.16.0.1', []],
  ])('IPAddress %s added or deleted -> %j', (name, want) => {
    ipHandler().onAdd!(makeIPAddress(name), false);
    expect(sorted(h.queue.added)).toEqual(want);
    h.queue.added.length = 0;
    ipHandler().onDelete!(makeIPAddress(name));
    expect(sorted(h.queue.added)).toEqual(want);
    h.queue.added.length = 0;
    ipHandler().onDelete!(new DeletedFinalStateUnknown(name, makeIPAddress(name)));
    expect(sorted(h.queue.added)).toEqual(want);
  });

  it('IPAddresses not managed by the apiserver allocator are ignored', () => {
    ipHandler().onAdd!(makeIPAddress('192.168.0.23', { 'ipaddress.kubernetes.io/ip-family': 'IPv4' }), false);
    ipHandler().onAdd!(
      makeIPAddress('192.168.0.24', {
        'ipaddress.kubernetes.io/ip-family': 'IPv4',
        'ipaddress.kubernetes.io/managed-by': 'other',
      }),
      false,
    );
    expect(h.queue.added).toEqual([]);
  });

  it('an IPAddress whose name does not parse is logged once and skipped', () => {
    const bad = makeIPAddress('192.168.0.300');
    ipHandler().onAdd!(bad, false);
    ipHandler().onDelete!(bad);
    expect(h.queue.added).toEqual([]);
    expect(h.logs.filter((l) => l.level === 'warn').map((l) => l.meta)).toEqual([
      { ipAddress: '192.168.0.300' },
    ]);
  });

  it('handlers make no API calls', () => {
    cidrHandler().onAdd!(makeServiceCIDR('new', '192.168.0.0/25'), false);
    ipHandler().onAdd!(makeIPAddress('192.168.0.23'), false);
    expect(h.client.actions).toEqual([]);
  });
});
