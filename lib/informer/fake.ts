import type { KubeObject } from '../api/index.js';
import type { ResourceRef } from '../client/types.js';
import { newIndexer } from './store.js';
import type { IndexFunc, Indexer, ResourceEventHandler, SharedIndexInformer } from './types.js';

/**
 * A shared informer for unit tests: never lists or watches. Tests prime its indexer and call
 * the captured handlers directly, as client-go's sample-controller tests prime listers.
 */
export class FakeSharedIndexInformer<T extends KubeObject = KubeObject> implements SharedIndexInformer<T> {
  readonly handlers: ResourceEventHandler<T>[] = [];
  private readonly indexer: Indexer<T> = newIndexer<T>();

  constructor(readonly ref: ResourceRef) {}

  addEventHandler(handler: ResourceEventHandler<T>) {
    this.handlers.push(handler);
    return { hasSynced: () => true, remove: () => undefined };
  }

  getIndexer(): Indexer<T> {
    return this.indexer;
  }

  addIndexers(indexers: Record<string, IndexFunc<T>>): void {
    this.indexer.addIndexers(indexers);
  }

  hasSynced(): boolean {
    return true;
  }

  lastSyncResourceVersion(): string {
    return '';
  }

  async run(): Promise<void> {}
}
