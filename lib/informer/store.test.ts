import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../api/index.js';
import { metaNamespaceKey, newIndexer, splitMetaNamespaceKey } from './store.js';
import { NAMESPACE_INDEX } from './types.js';

const cm = (ns: string, name: string, labels: Record<string, string> = {}, rv = '1'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { namespace: ns, name, labels, resourceVersion: rv },
});

describe('keys', () => {
  it('builds and splits namespace/name keys', () => {
    expect(metaNamespaceKey(cm('a', 'b'))).toBe('a/b');
    expect(metaNamespaceKey({ metadata: { name: 'node1' } })).toBe('node1');
    expect(splitMetaNamespaceKey('a/b')).toEqual({ namespace: 'a', name: 'b' });
    expect(splitMetaNamespaceKey('node1')).toEqual({ namespace: '', name: 'node1' });
    expect(() => splitMetaNamespaceKey('a/b/c')).toThrow('unexpected key format: "a/b/c"');
  });
});

describe('Store', () => {
  it('stores, lists and deletes by key', () => {
    const s = newIndexer();
    s.add(cm('a', 'x'));
    s.add(cm('b', 'y'));
    expect(s.get('a/x')?.metadata.name).toBe('x');
    expect(s.listKeys().sort()).toEqual(['a/x', 'b/y']);
    s.delete(cm('a', 'x'));
    expect(s.get('a/x')).toBeUndefined();
    expect(s.list().map((o) => o.metadata.name)).toEqual(['y']);
  });

  it('keeps the namespace index and custom indexes current across updates and deletes', () => {
    const s = newIndexer();
    s.add(cm('a', 'x', { app: 'web' }));
    s.add(cm('a', 'y', { app: 'db' }));
    // Added after objects exist: indexes what is already there.
    s.addIndexers({ byApp: (o) => (o.metadata.labels?.app ? [o.metadata.labels.app] : []) });
    s.add(cm('b', 'z', { app: 'web' }));
    expect(s.byIndex(NAMESPACE_INDEX, 'a').map(metaNamespaceKey).sort()).toEqual(['a/x', 'a/y']);
    expect(s.byIndex('byApp', 'web').map(metaNamespaceKey).sort()).toEqual(['a/x', 'b/z']);
    s.update(cm('a', 'x', { app: 'db' }, '2'));
    expect(s.byIndex('byApp', 'web').map(metaNamespaceKey)).toEqual(['b/z']);
    expect(s.byIndex('byApp', 'db').map(metaNamespaceKey).sort()).toEqual(['a/x', 'a/y']);
    s.delete(cm('b', 'z'));
    expect(s.byIndex('byApp', 'web')).toEqual([]);
    expect(s.byIndex(NAMESPACE_INDEX, 'b')).toEqual([]);
    expect(() => s.byIndex('nope', 'x')).toThrow('index "nope" does not exist');
    expect(() => s.addIndexers({ byApp: () => [] })).toThrow('indexer "byApp" already exists');
  });

  it('replace swaps the whole content and indexes', () => {
    const s = newIndexer();
    s.add(cm('a', 'x'));
    s.replace([cm('c', 'w')]);
    expect(s.listKeys()).toEqual(['c/w']);
    expect(s.byIndex(NAMESPACE_INDEX, 'a')).toEqual([]);
    expect(s.byIndex(NAMESPACE_INDEX, 'c').length).toBe(1);
  });

  it('accepts a custom key function', () => {
    const s = newIndexer((o) => o.metadata.uid ?? '');
    s.add({ metadata: { name: 'x', uid: 'u1' } });
    expect(s.get('u1')?.metadata.name).toBe('x');
  });
});
