import { describe, expect, it } from '@jest/globals';
import type { KubeObject, ResourceClaim } from '../api/index.js';
import { FakeClock } from '../clock/index.js';
import {
  ApiError,
  isAlreadyExists,
  isConflict,
  isGone,
  isInvalid,
  isNotFound,
  newConflict,
} from './errors.js';
import { FakeKubeClient } from './fake.js';
import { Resources, type WatchEvent } from './types.js';

const cm = (
  name: string,
  ns = 'default',
  data: Record<string, string> = {},
): KubeObject & { data: Record<string, string> } => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: ns },
  data,
});

async function take<T>(it: AsyncIterable<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  if (n === 0) return out;
  for await (const v of it) {
    out.push(v);
    if (out.length === n) break;
  }
  return out;
}

describe('FakeKubeClient', () => {
  it('records actions and serves seeded objects', async () => {
    const fake = new FakeKubeClient([cm('a')]);
    const got = await fake.resource(Resources.configmaps).get('a', 'default');
    expect(got.metadata.uid).toBe('fake-uid-1');
    expect(got.metadata.resourceVersion).toBe('1');
    await expect(fake.resource(Resources.configmaps).get('b', 'default')).rejects.toThrow(
      'configmaps "b" not found',
    );
    await fake.resource(Resources.serviceCIDRs).list();
    expect(fake.actions).toEqual([
      { verb: 'get', resource: 'configmaps', namespace: 'default', name: 'a' },
      { verb: 'get', resource: 'configmaps', namespace: 'default', name: 'b' },
      { verb: 'list', resource: 'servicecidrs' },
    ]);
    fake.clearActions();
    expect(fake.actions).toEqual([]);
  });

  it('create assigns uid, resourceVersion, timestamps and deterministic generateName suffixes', async () => {
    const fake = new FakeKubeClient([], { clock: new FakeClock(Date.parse('2026-01-01T00:00:00.500Z')) });
    const pods = fake.resource(Resources.configmaps);
    const a = await pods.create({ metadata: { generateName: 'x-', namespace: 'ns' } } as KubeObject);
    const b = await pods.create({ metadata: { generateName: 'x-' } } as KubeObject, { namespace: 'ns' });
    expect([a.metadata.name, b.metadata.name]).toEqual(['x-bbbbb', 'x-bbbbc']);
    expect(a.metadata).toMatchObject({
      uid: 'fake-uid-1',
      resourceVersion: '1',
      creationTimestamp: '2026-01-01T00:00:00Z',
      generation: 1,
    });
    expect(a.apiVersion).toBe('v1');
    expect(a.kind).toBe('ConfigMap');
    const err = await pods.create(cm('x-bbbbb', 'ns')).catch((e: unknown) => e);
    expect(isAlreadyExists(err)).toBe(true);
    expect((err as ApiError).message).toBe('configmaps "x-bbbbb" already exists');
    const withRv = await pods
      .create({ ...cm('rv', 'ns'), metadata: { name: 'rv', namespace: 'ns', resourceVersion: '1' } })
      .catch((e: unknown) => e);
    expect((withRv as ApiError).message).toBe('resourceVersion should not be set on objects to be created');
    expect(fake.writeActions().map((x) => [x.verb, x.name])).toEqual([
      ['create', undefined],
      ['create', undefined],
      ['create', 'x-bbbbb'],
      ['create', 'rv'],
    ]);
  });

  it('update conflicts on a stale resourceVersion and 404s on a missing object', async () => {
    const fake = new FakeKubeClient([cm('a')]);
    const c = fake.resource(Resources.configmaps);
    const v1 = await c.get('a', 'default');
    const v2 = await c.update({ ...v1, data: { k: 'v' } } as KubeObject);
    expect(v2.metadata.resourceVersion).toBe('2');
    const err = await c.update({ ...v1, data: { k: 'w' } } as KubeObject).catch((e: unknown) => e);
    expect(isConflict(err)).toBe(true);
    expect((err as ApiError).message).toBe(
      'Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your changes to the latest version and try again',
    );
    expect(isNotFound(await c.update(cm('zz')).catch((e: unknown) => e))).toBe(true);
    expect(fake.tracker.get('configmaps', 'default', 'a')).toMatchObject({ data: { k: 'v' } });
  });

  it('delete honours preconditions and waits for finalizers', async () => {
    const obj = cm('a');
    obj.metadata.finalizers = ['example.com/f'];
    const fake = new FakeKubeClient([obj], { clock: new FakeClock(Date.parse('2026-02-02T00:00:00Z')) });
    const c = fake.resource(Resources.configmaps);
    const err = await c
      .delete('a', { namespace: 'default', preconditions: { uid: 'other' } })
      .catch((e: unknown) => e);
    expect((err as ApiError).message).toBe(
      'Operation cannot be fulfilled on configmaps "a": Precondition failed: UID in precondition: other, UID in object meta: fake-uid-1',
    );
    await c.delete('a', { namespace: 'default' });
    const terminating = fake.tracker.get(Resources.configmaps, 'default', 'a');
    expect(terminating?.metadata.deletionTimestamp).toBe('2026-02-02T00:00:00Z');
    await c.patch('a', { metadata: { finalizers: null } }, { type: 'merge', namespace: 'default' });
    expect(fake.tracker.get(Resources.configmaps, 'default', 'a')).toBeUndefined();
    expect(fake.actions.map((a) => a.verb)).toEqual(['delete', 'delete', 'patch']);
    expect(fake.actions[0]).toEqual({
      verb: 'delete',
      resource: 'configmaps',
      namespace: 'default',
      name: 'a',
      options: { preconditions: { uid: 'other' } },
    });
  });

  it('applies each patch type', async () => {
    const claim: ResourceClaim = {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceClaim',
      metadata: { name: 'c', namespace: 'ns', finalizers: ['a'] },
      status: { reservedFor: [{ resource: 'pods', name: 'p1', uid: 'u1' }] },
    };
    const fake = new FakeKubeClient([claim]);
    const c = fake.resource<ResourceClaim>(Resources.resourceClaims);
    let got = await c.patch(
      'c',
      {
        metadata: { finalizers: ['b'] },
        status: { reservedFor: [{ resource: 'pods', name: 'p2', uid: 'u2' }] },
      },
      { type: 'strategic', namespace: 'ns', subresource: 'status' },
    );
    // Patch items first, then the ones it did not mention: the apiserver's order without $setElementOrder.
    expect(got.metadata.finalizers).toEqual(['b', 'a']);
    expect(got.status?.reservedFor?.map((r) => r.uid)).toEqual(['u2', 'u1']);
    got = await c.patch(
      'c',
      { status: { reservedFor: [{ uid: 'u1', $patch: 'delete' }] } },
      { type: 'strategic', namespace: 'ns' },
    );
    expect(got.status?.reservedFor?.map((r) => r.uid)).toEqual(['u2']);
    got = await c.patch('c', { metadata: { finalizers: ['z'] } }, { type: 'merge', namespace: 'ns' });
    expect(got.metadata.finalizers).toEqual(['z']);
    got = await c.patch(
      'c',
      [
        { op: 'test', path: '/metadata/finalizers/0', value: 'z' },
        { op: 'remove', path: '/metadata/finalizers/0' },
      ],
      {
        type: 'json',
        namespace: 'ns',
      },
    );
    expect(got.metadata.finalizers).toEqual([]);
    const failed = await c
      .patch('c', [{ op: 'test', path: '/metadata/name', value: 'nope' }], { type: 'json', namespace: 'ns' })
      .catch((e: unknown) => e);
    expect(isInvalid(failed)).toBe(true);
    const stale = await c
      .patch('c', { metadata: { resourceVersion: '1' } }, { type: 'merge', namespace: 'ns' })
      .catch((e: unknown) => e);
    expect(isConflict(stale)).toBe(true);
    const applied = await c.patch(
      'new',
      { metadata: { labels: { x: 'y' } } },
      { type: 'apply', namespace: 'ns', fieldManager: 'm', force: true },
    );
    expect(applied.metadata).toMatchObject({ name: 'new', namespace: 'ns', labels: { x: 'y' } });
    expect(fake.actions[0]).toMatchObject({
      verb: 'patch',
      resource: 'resourceclaims',
      namespace: 'ns',
      name: 'c',
      subresource: 'status',
      patchType: 'strategic',
    });
    expect(fake.actions.at(-1)).toEqual({
      verb: 'patch',
      resource: 'resourceclaims',
      namespace: 'ns',
      name: 'new',
      patchType: 'apply',
      fieldManager: 'm',
      force: true,
      body: { metadata: { labels: { x: 'y' } } },
    });
  });

  it('reactors short-circuit, fall through, or inject faults', async () => {
    const fake = new FakeKubeClient([cm('a')]);
    const c = fake.resource(Resources.configmaps);
    let calls = 0;
    fake.prependReactor('update', 'configmaps', (action) => {
      calls++;
      if (calls === 1) throw newConflict(Resources.configmaps, action.name ?? '');
      return undefined;
    });
    fake.prependReactor('get', '*', (action) => (action.name === 'virtual' ? cm('virtual') : undefined));
    expect((await c.get('virtual', 'default')).metadata.name).toBe('virtual');
    const cur = await c.get('a', 'default');
    expect(isConflict(await c.update(cur).catch((e: unknown) => e))).toBe(true);
    expect((await c.update(cur)).metadata.resourceVersion).toBe('2');
    expect(fake.actions.map((a) => a.verb)).toEqual(['get', 'get', 'update', 'update']);
  });

  it('lists with selectors and pagination', async () => {
    const objs = ['a', 'b', 'c'].map((n) => ({
      ...cm(n),
      metadata: { name: n, namespace: 'default', labels: { app: n === 'c' ? 'y' : 'x' } },
    }));
    const fake = new FakeKubeClient([...objs, cm('d', 'other')]);
    const c = fake.resource(Resources.configmaps);
    expect((await c.list({ labelSelector: 'app=x' })).items.map((o) => o.metadata.name)).toEqual(['a', 'b']);
    expect(
      (await c.list({ fieldSelector: 'metadata.namespace=other' })).items.map((o) => o.metadata.name),
    ).toEqual(['d']);
    const p1 = await c.list({ namespace: 'default', limit: 2 });
    expect(p1.items.map((o) => o.metadata.name)).toEqual(['a', 'b']);
    const p2 = await c.list({ namespace: 'default', limit: 2, continue: p1.metadata.continue });
    expect(p2.items.map((o) => o.metadata.name)).toEqual(['c']);
    expect(p2.metadata.continue).toBeUndefined();
    expect(p1.metadata.resourceVersion).toBe('4');
    const meta = await c.list({ namespace: 'other', metadataOnly: true });
    expect(meta.items[0]).toEqual({
      apiVersion: 'meta.k8s.io/v1',
      kind: 'PartialObjectMetadata',
      metadata: fake.tracker.get('configmaps', 'other', 'd')?.metadata,
    });
  });

  it('watch replays from a resourceVersion, then feeds live changes until aborted', async () => {
    const fake = new FakeKubeClient([cm('a')]);
    const c = fake.resource(Resources.configmaps);
    await c.create(cm('b'));
    const ac = new AbortController();
    const it = c.watch({ namespace: 'default', resourceVersion: '1' }, ac.signal)[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value).toMatchObject({
      type: 'ADDED',
      object: { metadata: { name: 'b', resourceVersion: '2' } },
    });
    const pending = it.next();
    await c.delete('a', { namespace: 'default' });
    expect(((await pending).value as WatchEvent).type).toBe('DELETED');
    fake.tracker.remove('configmaps', 'default', 'b');
    expect(((await it.next()).value as WatchEvent).object.metadata.name).toBe('b');
    fake.tracker.sendWatchEvent('configmaps', {
      type: 'BOOKMARK',
      object: { metadata: { resourceVersion: '3' } },
    });
    expect(((await it.next()).value as WatchEvent).type).toBe('BOOKMARK');
    const ended = it.next();
    ac.abort();
    expect((await ended).done).toBe(true);
    expect(fake.tracker.openWatches()).toBe(0);
  });

  it('watch without resourceVersion starts with the current state; sendInitialEvents ends with a bookmark', async () => {
    const fake = new FakeKubeClient([cm('a'), cm('b')]);
    const c = fake.resource(Resources.configmaps);
    const ac = new AbortController();
    const evs = await take(
      c.watch(
        { sendInitialEvents: true, allowWatchBookmarks: true, resourceVersionMatch: 'NotOlderThan' },
        ac.signal,
      ),
      3,
    );
    expect(evs.map((e) => e.type)).toEqual(['ADDED', 'ADDED', 'BOOKMARK']);
    expect(evs[2].object.metadata).toEqual({
      resourceVersion: '2',
      annotations: { 'k8s.io/initial-events-end': 'true' },
    });
    ac.abort();
  });

  it('watch errors surface from the iterator (reactor or expired resourceVersion)', async () => {
    const fake = new FakeKubeClient();
    fake.prependReactor('watch', 'pods', () => {
      throw new ApiError({ code: 500, message: 'boom', verb: 'watch', resource: 'pods' });
    });
    const ac = new AbortController();
    await expect(take(fake.resource(Resources.pods).watch({}, ac.signal), 1)).rejects.toThrow('boom');
    const err = await take(
      fake.resource(Resources.leases).watch({ resourceVersion: '-5' }, ac.signal),
      1,
    ).catch((e: unknown) => e);
    expect(isGone(err)).toBe(true);
  });
});
