import { describe, expect, it } from '@jest/globals';
import { FakeClock } from '../clock/index.js';
import { FakeKubeClient } from './fake.js';
import { ServiceAccountTokenSource } from './satoken.js';

const TOKEN_PATH = '/api/v1/namespaces/kube-system/serviceaccounts/service-cidr-controller/token';

const SERVICE_ACCOUNTS = {
  group: '',
  version: 'v1',
  resource: 'serviceaccounts',
  kind: 'ServiceAccount',
  namespaced: true,
};

function setup(opts: { existing?: boolean; grantSeconds?: number } = {}) {
  const clock = new FakeClock(Date.parse('2026-12-02T12:00:00Z'));
  const client = new FakeKubeClient(
    opts.existing === false
      ? []
      : [
          {
            apiVersion: 'v1',
            kind: 'ServiceAccount',
            metadata: { name: 'service-cidr-controller', namespace: 'kube-system' },
          },
        ],
    { resources: [SERVICE_ACCOUNTS] },
  );
  const calls: { path: string; body: unknown }[] = [];
  let n = 0;
  client.rawHandler = (method, path, body) => {
    calls.push({ path, body });
    const exists = client.tracker.get(SERVICE_ACCOUNTS, 'kube-system', 'service-cidr-controller');
    if (!exists) return { status: 404, body: '{"kind":"Status","reason":"NotFound"}' };
    const seconds =
      opts.grantSeconds ?? (body as { spec: { expirationSeconds: number } }).spec.expirationSeconds;
    return {
      status: 201,
      body: JSON.stringify({
        status: {
          token: `token-${++n}`,
          expirationTimestamp: new Date(clock.now() + seconds * 1000).toISOString(),
        },
      }),
    };
  };
  const source = new ServiceAccountTokenSource({
    client,
    namespace: 'kube-system',
    name: 'service-cidr-controller',
    createIfMissing: true,
    clock,
  });
  return { clock, client, calls, source };
}

describe('ServiceAccountTokenSource', () => {
  it('asks TokenRequest for a one-hour token once and caches it', async () => {
    const { source, calls } = setup();
    expect(await Promise.all([source.token(), source.token(), source.token()])).toEqual([
      'token-1',
      'token-1',
      'token-1',
    ]);
    expect(calls).toEqual([
      {
        path: TOKEN_PATH,
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 3600 },
        },
      },
    ]);
    expect(source.username).toBe('system:serviceaccount:kube-system:service-cidr-controller');
  });

  it('renews at 80 % of the lifetime the server granted, not of what was asked', async () => {
    const { source, clock, calls } = setup({ grantSeconds: 600 });
    await source.token();
    clock.advance(479_999);
    expect(await source.token()).toBe('token-1');
    clock.advance(1);
    expect(await source.token()).toBe('token-2');
    expect(calls).toHaveLength(2);
  });

  it('a wall-clock step does not expire the cached token early', async () => {
    const { source, clock } = setup();
    await source.token();
    clock.stepWall(10 * 3_600_000);
    expect(await source.token()).toBe('token-1');
  });

  it('after a 401 (invalidate) the next request gets a new token', async () => {
    const { source } = setup();
    await source.token();
    source.invalidate();
    expect(await source.token()).toBe('token-2');
  });

  it('creates a missing ServiceAccount, then asks again', async () => {
    const { source, client, calls } = setup({ existing: false });
    expect(await source.token()).toBe('token-1');
    expect(client.writeActions().map((a) => [a.verb, a.resource, a.namespace])).toEqual([
      ['create', 'serviceaccounts', 'kube-system'],
    ]);
    expect(calls).toHaveLength(2);
  });
});
