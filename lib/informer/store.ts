/**
 * The informer's cache: objects keyed `namespace/name` (or `name` when cluster-scoped),
 * with named secondary indexes kept up to date on every write.
 *
 * Node runs our code on one thread, so "thread-safe" reduces to: every method leaves
 * items and indexes consistent before it returns. Objects are stored as given and never
 * mutated here; callers treat what they read as read-only (the informer replaces objects,
 * it never edits them in place, which is what lets handlers keep references cheaply).
 */
import type { KubeObject } from '../api/index.js';
import type { IndexFunc, Indexer } from './types.js';
import { NAMESPACE_INDEX } from './types.js';

export type KeyFunc<T> = (obj: T) => string;

/** `namespace/name`, or `name` for a cluster-scoped object (client-go's MetaNamespaceKeyFunc). */
export function metaNamespaceKey(obj: KubeObject): string {
  const name = obj.metadata?.name ?? '';
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${name}` : name;
}

/** Inverse of metaNamespaceKey; `namespace` is '' for a cluster-scoped key. Throws on more than one '/'. */
export function splitMetaNamespaceKey(key: string): { namespace: string; name: string } {
  const parts = key.split('/');
  if (parts.length === 1) return { namespace: '', name: parts[0] };
  if (parts.length === 2) return { namespace: parts[0], name: parts[1] };
  throw new Error(`unexpected key format: ${JSON.stringify(key)}`);
}

/** The built-in namespace index: cluster-scoped objects index under ''. */
export function namespaceIndexFunc(obj: KubeObject): string[] {
  return [obj.metadata?.namespace ?? ''];
}

export function newIndexer<T extends KubeObject = KubeObject>(
  keyFn: KeyFunc<T> = metaNamespaceKey,
): Store<T> {
  return new Store<T>(keyFn);
}

export class Store<T extends KubeObject = KubeObject> implements Indexer<T> {
  private readonly items = new Map<string, T>();
  private readonly indexers = new Map<string, IndexFunc<T>>();
  /** index name -> index value -> keys */
  private readonly indices = new Map<string, Map<string, Set<string>>>();

  constructor(private readonly keyFn: KeyFunc<T> = metaNamespaceKey) {
    this.addIndexers({ [NAMESPACE_INDEX]: namespaceIndexFunc });
  }

  keyOf(obj: T): string {
    return this.keyFn(obj);
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  get size(): number {
    return this.items.size;
  }

  /**
   * A live iterator over the keys: no copy; keys deleted before being reached are skipped
   * and keys added meanwhile are visited (Map iteration order). The fan-out walks with it.
   */
  keysIterator(): IterableIterator<string> {
    return this.items.keys();
  }

  list(): T[] {
    return [...this.items.values()];
  }

  listKeys(): string[] {
    return [...this.items.keys()];
  }

  byIndex(indexName: string, value: string): T[] {
    const out: T[] = [];
    for (const key of this.indexKeys(indexName, value)) {
      const obj = this.items.get(key);
      if (obj) out.push(obj);
    }
    return out;
  }

  /** Keys whose index `indexName` yields `value`. Throws on an unknown index name. */
  indexKeys(indexName: string, value: string): string[] {
    const index = this.indices.get(indexName);
    if (!index) throw new Error(`index ${JSON.stringify(indexName)} does not exist`);
    return [...(index.get(value) ?? [])];
  }

  /** Names of the indexes defined so far. */
  indexNames(): string[] {
    return [...this.indexers.keys()];
  }

  addIndexers(indexers: Record<string, IndexFunc<T>>): void {
    for (const [name, fn] of Object.entries(indexers)) {
      if (this.indexers.has(name)) throw new Error(`indexer ${JSON.stringify(name)} already exists`);
      this.indexers.set(name, fn);
      const index = new Map<string, Set<string>>();
      this.indices.set(name, index);
      for (const [key, obj] of this.items) addToIndex(index, fn(obj), key);
    }
  }

  add(obj: T): void {
    this.put(this.keyFn(obj), obj);
  }

  update(obj: T): void {
    this.put(this.keyFn(obj), obj);
  }

  delete(obj: T): void {
    this.deleteKey(this.keyFn(obj));
  }

  /** Store `obj` under `key`; returns the object it replaced. */
  put(key: string, obj: T): T | undefined {
    const old = this.items.get(key);
    this.items.set(key, obj);
    this.reindex(key, old, obj);
    return old;
  }

  /** Remove `key`; returns the object removed. */
  deleteKey(key: string): T | undefined {
    const old = this.items.get(key);
    if (old === undefined) return undefined;
    this.items.delete(key);
    this.reindex(key, old, undefined);
    return old;
  }

  replace(objs: T[]): void {
    this.items.clear();
    for (const index of this.indices.values()) index.clear();
    for (const obj of objs) this.add(obj);
  }

  private reindex(key: string, oldObj: T | undefined, newObj: T | undefined): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name)!;
      const oldValues = oldObj ? fn(oldObj) : [];
      const newValues = newObj ? fn(newObj) : [];
      // Most updates leave index values unchanged; skip the set churn then.
      if (oldValues.length === newValues.length && oldValues.every((v, i) => v === newValues[i])) continue;
      for (const v of oldValues) {
        const keys = index.get(v);
        if (!keys) continue;
        keys.delete(key);
        if (keys.size === 0) index.delete(v);
      }
      addToIndex(index, newValues, key);
    }
  }
}

function addToIndex(index: Map<string, Set<string>>, values: string[], key: string): void {
  for (const v of values) {
    let keys = index.get(v);
    if (!keys) index.set(v, (keys = new Set()));
    keys.add(key);
  }
}
