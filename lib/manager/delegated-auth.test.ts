import { describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { FakeKubeClient } from '../client/fake.js';
import { FakeClock } from '../clock/index.js';
import { DELEGATED_AUTH_CACHE_TTL_MS, DelegatedAuth } from './delegated-auth.js';

const request = (authorization?: string, method = 'GET') =>
  ({ method, headers: authorization ? { authorization } : {} }) as unknown as IncomingMessage;

/** The apiserver's answers: token "good" is jane (group readers), only readers may get /metrics. */
function setup() {
  const client = new FakeKubeClient();
  const clock = new FakeClock();
  client.prependReactor('create', 'tokenreviews', (a) => {
    const token = (a.body as { spec: { token: string } }).spec.token;
    return {
      ...(a.body as object),
      status:
        token === 'good'
          ? { authenticated: true, user: { username: 'jane', uid: 'u1', groups: ['readers'] } }
          : { authenticated: false, error: 'invalid bearer token' },
    };
  });
  client.prependReactor('create', 'subjectaccessreviews', (a) => {
    const spec = (a.body as { spec: { groups?: string[] } }).spec;
    return { ...(a.body as object), status: { allowed: spec.groups?.includes('readers') === true } };
  });
  return { client, clock, auth: new DelegatedAuth(client, { clock }) };
}

describe('DelegatedAuth', () => {
  it('401 without a bearer token or with one the TokenReview rejects', async () => {
    const { auth, client } = setup();
    expect(await auth.check(request(), '/metrics')).toEqual({
      allowed: false,
      status: 401,
      message: 'Unauthorized',
    });
    expect(await auth.check(request('Basic Zm9vOmJhcg=='), '/metrics')).toMatchObject({ status: 401 });
    expect(await auth.check(request('Bearer nope'), '/metrics')).toMatchObject({ status: 401 });
    expect(client.actions.map((a) => a.resource)).toEqual(['tokenreviews']);
  });

  it('asks a SubjectAccessReview for the user, its groups and the non-resource path and verb', async () => {
    const { auth, client } = setup();
    expect(await auth.check(request('Bearer good'), '/metrics')).toMatchObject({ allowed: true });
    const sar = client.actions.find((a) => a.resource === 'subjectaccessreviews');
    expect((sar?.body as { spec: unknown }).spec).toEqual({
      user: 'jane',
      uid: 'u1',
      groups: ['readers'],
      nonResourceAttributes: { path: '/metrics', verb: 'get' },
    });
  });

  it('403 naming the user when RBAC does not allow it', async () => {
    const { client, clock } = setup();
    client.prependReactor('create', 'subjectaccessreviews', (a) => ({
      ...(a.body as object),
      status: { allowed: false },
    }));
    const auth = new DelegatedAuth(client, { clock });
    expect(await auth.check(request('Bearer good'), '/metrics')).toEqual({
      allowed: false,
      status: 403,
      message: 'Forbidden: user "jane" cannot get path "/metrics"',
    });
  });

  it('caches both answers for 10 s, then asks again', async () => {
    const { auth, client, clock } = setup();
    for (let i = 0; i < 5; i++) await auth.check(request('Bearer good'), '/metrics');
    expect(client.actions).toHaveLength(2);
    clock.advance(DELEGATED_AUTH_CACHE_TTL_MS - 1);
    await auth.check(request('Bearer good'), '/metrics');
    expect(client.actions).toHaveLength(2);
    clock.advance(1);
    await auth.check(request('Bearer good'), '/metrics');
    expect(client.actions).toHaveLength(4);
  });
});
