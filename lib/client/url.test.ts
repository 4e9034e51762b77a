import { describe, expect, it } from '@jest/globals';
import { Resources } from './types.js';
import { deleteBody, listQuery, resourcePath, watchQuery, withQuery, writeQuery } from './url.js';

describe('resourcePath', () => {
  it.each([
    [Resources.pods, {}, '/api/v1/pods'],
    [Resources.pods, { namespace: 'ns' }, '/api/v1/namespaces/ns/pods'],
    [
      Resources.pods,
      { namespace: 'ns', name: 'p', subresource: 'status' },
      '/api/v1/namespaces/ns/pods/p/status',
    ],
    [Resources.namespaces, { name: 'kube-system' }, '/api/v1/namespaces/kube-system'],
    [
      Resources.serviceCIDRs,
      { name: 'kubernetes', namespace: 'ignored' },
      '/apis/networking.k8s.io/v1/servicecidrs/kubernetes',
    ],
    [
      Resources.resourceClaims,
      { namespace: 'a', name: 'c', subresource: 'status' },
      '/apis/resource.k8s.io/v1/namespaces/a/resourceclaims/c/status',
    ],
    [
      Resources.ipAddresses,
      { name: '2001:db8::1' },
      '/apis/networking.k8s.io/v1/ipaddresses/2001%3Adb8%3A%3A1',
    ],
  ])('%j %j -> %s', (ref, opts, want) => {
    expect(resourcePath(ref, opts)).toBe(want);
  });

  it('rejects an empty name and a subresource without a name', () => {
    expect(() => resourcePath(Resources.pods, { namespace: 'n', name: '' })).toThrow(
      'pods: resource name may not be empty',
    );
    expect(() => resourcePath(Resources.pods, { subresource: 'status' })).toThrow(
      'pods: a subresource needs a name',
    );
  });
});

describe('query strings', () => {
  it('list', () => {
    const q = listQuery({
      labelSelector: 'a=b,c in (d)',
      fieldSelector: 'metadata.name=x',
      limit: 500,
      continue: 'tok',
      resourceVersion: '0',
      resourceVersionMatch: 'NotOlderThan',
    });
    expect(q.toString()).toBe(
      'labelSelector=a%3Db%2Cc+in+%28d%29&fieldSelector=metadata.name%3Dx&limit=500&continue=tok&resourceVersion=0&resourceVersionMatch=NotOlderThan',
    );
    expect(listQuery({ limit: 0 }).toString()).toBe('');
  });

  it('watch', () => {
    expect(
      watchQuery({ resourceVersion: '42', timeoutSeconds: 300, allowWatchBookmarks: true }).toString(),
    ).toBe('watch=true&resourceVersion=42&timeoutSeconds=300&allowWatchBookmarks=true');
    expect(
      watchQuery({
        sendInitialEvents: true,
        resourceVersionMatch: 'NotOlderThan',
        allowWatchBookmarks: true,
      }).toString(),
    ).toBe('watch=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&sendInitialEvents=true');
  });

  it('write and delete', () => {
    expect(writeQuery({ fieldManager: 'ts-kcm', force: true, dryRun: true }).toString()).toBe(
      'fieldManager=ts-kcm&dryRun=All&force=true',
    );
    expect(withQuery('/api/v1/pods', writeQuery({}))).toBe('/api/v1/pods');
    expect(deleteBody({ namespace: 'x' })).toBeUndefined();
    expect(
      deleteBody({ preconditions: { uid: 'u' }, propagationPolicy: 'Background', gracePeriodSeconds: 0 }),
    ).toEqual({
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      preconditions: { uid: 'u' },
      propagationPolicy: 'Background',
      gracePeriodSeconds: 0,
    });
  });
});
