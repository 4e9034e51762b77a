/**
 * Patch helpers: ResourceClient.patch with the patch type spelled out, so call sites say
 * what they mean. Content types are chosen in url.ts (patchContentTypes).
 */
import type { KubeObject } from '../api/index.js';
import type { JsonPatchOp } from './patchapply.js';
import { apiVersionOf, type PatchOptions, type ResourceClient } from './types.js';

type Opts = Omit<PatchOptions, 'type' | 'force'>;

/** RFC 7386 merge patch (application/merge-patch+json): lists are replaced whole, null deletes. */
export function mergePatch<T extends KubeObject>(
  client: ResourceClient<T>,
  name: string,
  patch: unknown,
  opts: Opts = {},
): Promise<T> {
  return client.patch(name, patch, { ...opts, type: 'merge' });
}

/** Strategic merge patch (application/strategic-merge-patch+json): lists merge by their declared keys. Built-in types only. */
export function strategicMergePatch<T extends KubeObject>(
  client: ResourceClient<T>,
  name: string,
  patch: unknown,
  opts: Opts = {},
): Promise<T> {
  return client.patch(name, patch, { ...opts, type: 'strategic' });
}

/** RFC 6902 JSON patch (application/json-patch+json); a failed `test` op fails the whole patch. */
export function jsonPatch<T extends KubeObject>(
  client: ResourceClient<T>,
  name: string,
  ops: JsonPatchOp[],
  opts: Opts = {},
): Promise<T> {
  return client.patch(name, ops, { ...opts, type: 'json' });
}

/**
 * Server-side apply (application/apply-patch+yaml, sent as JSON). `obj` is the full intent of
 * `fieldManager`; name and namespace come from it, apiVersion and kind are filled from the
 * client's resource when missing (apply requires them).
 */
export async function applyPatch<T extends KubeObject>(
  client: ResourceClient<T>,
  obj: T,
  opts: { fieldManager: string; force?: boolean; subresource?: string; dryRun?: boolean },
): Promise<T> {
  const name = obj.metadata?.name;
  if (!name) throw new Error('applyPatch: metadata.name is required');
  const body = {
    ...obj,
    apiVersion: obj.apiVersion ?? apiVersionOf(client.ref),
    kind: obj.kind ?? client.ref.kind,
  };
  return client.patch(name, body, {
    type: 'apply',
    namespace: obj.metadata.namespace,
    fieldManager: opts.fieldManager,
    force: opts.force,
    subresource: opts.subresource,
    dryRun: opts.dryRun,
  });
}
