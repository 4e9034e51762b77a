import { describe, expect, it } from '@jest/globals';
import type { IPAddress } from '../../lib/api/index.js';
import { LB_CLASS, type LBService } from '../../controllers/lbipam/index.js';
import {
  addressState,
  checkLBSnapshot,
  serviceState,
  sharedIngressIPs,
  type LBAddressState,
  type LBServiceState,
  type LBSnapshot,
} from './lbipam-invariants.js';

const NOW = 1_000_000;
const OPTS = { holdMs: 3_000, slackMs: 2_000 };

const svc = (key: string, ips: string[], wanted = true): LBServiceState => ({ key, wanted, ingressIPs: ips });
const addr = (name: string, parent: string, released?: number): LBAddressState =>
  released === undefined
    ? { name, parent, released: false }
    : { name, parent, released: true, releasedAtMs: released };
const snap = (services: LBServiceState[], addresses: LBAddressState[]): LBSnapshot => ({
  at: NOW,
  services,
  addresses,
});
const invariants = (s: LBSnapshot) => checkLBSnapshot(s, OPTS).map((v) => `${v.object}: ${v.invariant}`);

describe('sharedIngressIPs', () => {
  it('names an IP in two Services once, with both holders', () => {
    const v = sharedIngressIPs([
      svc('ns/a', ['192.0.2.1']),
      svc('ns/b', ['192.0.2.1']),
      svc('ns/c', ['192.0.2.2']),
    ]);
    expect(v).toEqual([
      {
        object: '192.0.2.1',
        invariant: "an IP is in at most one Service's status.loadBalancer.ingress",
        detail: 'in ns/a, ns/b',
      },
    ]);
  });

  it('does not count one Service listing its IP twice as two holders', () => {
    expect(sharedIngressIPs([svc('ns/a', ['192.0.2.1', '192.0.2.1'])])).toEqual([]);
  });
});

describe('checkLBSnapshot', () => {
  it('accepts a consistent state: allocated, held within its hold, unwanted without IP', () => {
    const s = snap(
      [svc('ns/a', ['192.0.2.1']), svc('ns/b', ['192.0.2.2']), svc('ns/c', [], false)],
      [addr('192.0.2.1', 'ns/a'), addr('192.0.2.2', 'ns/b'), addr('192.0.2.3', 'ns/gone', NOW - 4_000)],
    );
    expect(checkLBSnapshot(s, OPTS)).toEqual([]);
  });

  it.each<[string, LBSnapshot, string[]]>([
    [
      'two Services in status with one IP',
      snap([svc('ns/a', ['192.0.2.1']), svc('ns/b', ['192.0.2.1'])], [addr('192.0.2.1', 'ns/a')]),
      [
        "192.0.2.1: an IP is in at most one Service's status.loadBalancer.ingress",
        'ns/b: an ingress IP has its IPAddress',
      ],
    ],
    [
      'ingress IP without an IPAddress',
      snap([svc('ns/a', ['192.0.2.1'])], []),
      ['ns/a: an ingress IP has its IPAddress'],
    ],
    [
      'ingress IP whose IPAddress is released',
      snap([svc('ns/a', ['192.0.2.1'])], [addr('192.0.2.1', 'ns/a', NOW)]),
      ['ns/a: an ingress IP has its IPAddress'],
    ],
    [
      'unreleased IPAddress of a deleted Service (orphan)',
      snap([], [addr('192.0.2.1', 'ns/gone')]),
      ['192.0.2.1: no orphaned IPAddress: an unreleased one has a live Service that wants it'],
    ],
    [
      'unreleased IPAddress of a Service whose type changed away',
      snap([svc('ns/a', [], false)], [addr('192.0.2.1', 'ns/a')]),
      ['192.0.2.1: no orphaned IPAddress: an unreleased one has a live Service that wants it'],
    ],
    [
      'unreleased IPAddress missing from its Service',
      snap([svc('ns/a', ['192.0.2.2'])], [addr('192.0.2.1', 'ns/a'), addr('192.0.2.2', 'ns/a')]),
      ["192.0.2.1: an unreleased IPAddress is in its Service's ingress"],
    ],
    [
      'released IPAddress past hold + slack',
      snap([], [addr('192.0.2.1', 'ns/gone', NOW - 5_001)]),
      ['192.0.2.1: a released IPAddress is deleted once its hold is over'],
    ],
    [
      'released IPAddress without a readable time',
      snap([], [addr('192.0.2.1', 'ns/gone', NaN)]),
      ['192.0.2.1: a released IPAddress is deleted once its hold is over'],
    ],
    [
      'wanted Service without IP',
      snap([svc('ns/a', [])], []),
      ['ns/a: a LoadBalancer Service of our class has one IP'],
    ],
    [
      'unwanted Service still showing our IP',
      snap([svc('ns/a', ['192.0.2.1'], false)], [addr('192.0.2.1', 'ns/a')]),
      [
        'ns/a: a Service that wants no IP shows none of ours',
        '192.0.2.1: no orphaned IPAddress: an unreleased one has a live Service that wants it',
      ],
    ],
  ])('finds %s', (_, s, want) => {
    expect(invariants(s)).toEqual(want);
  });

  it('holds exactly at hold + slack is still fine', () => {
    expect(checkLBSnapshot(snap([], [addr('192.0.2.1', 'ns/gone', NOW - 5_000)]), OPTS)).toEqual([]);
  });

  it('ignores Services and IPAddresses outside the prefix', () => {
    const s = snap([svc('other/a', [])], [addr('192.0.2.1', 'other/gone')]);
    expect(checkLBSnapshot(s, { ...OPTS, prefix: 'ns/' })).toEqual([]);
  });
});

describe('serviceState / addressState', () => {
  const base: LBService = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'a', namespace: 'ns' },
    spec: { type: 'LoadBalancer', loadBalancerClass: LB_CLASS },
    status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }, { hostname: 'lb.example.com' }] } },
  };

  it('wants an IP only as a LoadBalancer of our class that is not being deleted', () => {
    expect(serviceState(base)).toEqual({ key: 'ns/a', wanted: true, ingressIPs: ['192.0.2.1'] });
    expect(serviceState({ ...base, spec: { type: 'ClusterIP' } }).wanted).toBe(false);
    expect(serviceState({ ...base, spec: { type: 'LoadBalancer', loadBalancerClass: 'other' } }).wanted).toBe(
      false,
    );
    expect(
      serviceState({ ...base, metadata: { ...base.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } })
        .wanted,
    ).toBe(false);
  });

  it('reads parent, released and released-at of an IPAddress', () => {
    const ip: IPAddress = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'IPAddress',
      metadata: {
        name: '192.0.2.1',
        labels: {
          'ipaddress.kubernetes.io/managed-by': 'lb-ipam.ts-kcm.io',
          'lb.ts-kcm.io/released': 'true',
        },
        annotations: { 'lb.ts-kcm.io/released-at': '2026-01-01T00:00:01.500000Z' },
      },
      spec: { parentRef: { group: '', resource: 'services', namespace: 'ns', name: 'a' } },
    };
    expect(addressState(ip)).toEqual({
      name: '192.0.2.1',
      parent: 'ns/a',
      released: true,
      releasedAtMs: Date.parse('2026-01-01T00:00:01.500Z'),
    });
    const held = { ...ip, metadata: { name: '192.0.2.1', labels: {} } };
    expect(addressState(held)).toEqual({ name: '192.0.2.1', parent: 'ns/a', released: false });
  });
});
