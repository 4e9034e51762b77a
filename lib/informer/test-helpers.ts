/** Small helpers shared by this package's unit tests. */
import type { KubeObject } from '../api/index.js';
import { DeletedFinalStateUnknown } from './types.js';

export function cm(
  name: string,
  rv: string,
  extra: Partial<KubeObject['metadata']> = {},
  ns = 'ns1',
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { namespace: ns, name, resourceVersion: rv, ...extra },
  };
}

/** One macrotask turn: lets every pending promise chain run. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Turn the event loop until `cond` holds; fails the test instead of hanging. */
export async function until(cond: () => boolean, what = 'condition', maxTurns = 10_000): Promise<void> {
  for (let i = 0; i < maxTurns; i++) {
    if (cond()) return;
    await turn();
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Records what a handler was given, in order. */
export class RecordingHandler<T extends KubeObject = KubeObject> {
  readonly calls: string[] = [];
  readonly state = new Map<string, string>();
  onAdd(obj: T, initial: boolean): void {
    this.calls.push(`add ${key(obj)}@${obj.metadata.resourceVersion}${initial ? ' initial' : ''}`);
    this.state.set(key(obj), obj.metadata.resourceVersion ?? '');
  }
  onUpdate(old: T, obj: T): void {
    this.calls.push(`update ${key(obj)}@${old.metadata.resourceVersion}->${obj.metadata.resourceVersion}`);
    this.state.set(key(obj), obj.metadata.resourceVersion ?? '');
  }
  onDelete(obj: T | DeletedFinalStateUnknown<T>): void {
    if (obj instanceof DeletedFinalStateUnknown) {
      this.calls.push(`delete ${obj.key} tombstone@${obj.obj.metadata.resourceVersion}`);
      this.state.delete(obj.key);
    } else {
      this.calls.push(`delete ${key(obj)}@${obj.metadata.resourceVersion}`);
      this.state.delete(key(obj));
    }
  }
}

function key(obj: KubeObject): string {
  return obj.metadata.namespace
    ? `${obj.metadata.namespace}/${obj.metadata.name}`
    : (obj.metadata.name ?? '');
}
