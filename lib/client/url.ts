/**
 * REST paths and query strings, the way the apiserver lays them out:
 *   /api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]           (core group)
 *   /apis/{group}/{version}[/namespaces/{ns}]/{resource}[/{name}[/{sub}]]   (named groups)
 */
import type { DeleteOptions, ListOptions, PatchType, ResourceRef, WatchOptions } from './types.js';

export function resourcePath(
  ref: ResourceRef,
  opts: { namespace?: string; name?: string; subresource?: string } = {},
): string {
  const parts = ref.group === '' ? ['api', ref.version] : ['apis', ref.group, ref.version];
  if (ref.namespaced && opts.namespace) parts.push('namespaces', opts.namespace);
  parts.push(ref.resource);
  if (opts.name !== undefined) {
    if (opts.name === '') throw new Error(`${ref.resource}: resource name may not be empty`);
    parts.push(opts.name);
    if (opts.subresource) parts.push(opts.subresource);
  } else if (opts.subresource) {
    throw new Error(`${ref.resource}: a subresource needs a name`);
  }
  return '/' + parts.map(encodeURIComponent).join('/');
}

function setIf(q: URLSearchParams, key: string, value: string | number | boolean | undefined): void {
  if (value === undefined || value === '') return;
  q.set(key, String(value));
}

export function listQuery(opts: ListOptions = {}): URLSearchParams {
  const q = new URLSearchParams();
  setIf(q, 'labelSelector', opts.labelSelector);
  setIf(q, 'fieldSelector', opts.fieldSelector);
  setIf(q, 'shardSelector', opts.shardSelector);
  if (opts.limit && opts.limit > 0) q.set('limit', String(opts.limit));
  setIf(q, 'continue', opts.continue);
  setIf(q, 'resourceVersion', opts.resourceVersion);
  setIf(q, 'resourceVersionMatch', opts.resourceVersionMatch);
  return q;
}

export function watchQuery(opts: WatchOptions = {}): URLSearchParams {
  const q = new URLSearchParams();
  q.set('watch', 'true');
  setIf(q, 'labelSelector', opts.labelSelector);
  setIf(q, 'fieldSelector', opts.fieldSelector);
  setIf(q, 'shardSelector', opts.shardSelector);
  setIf(q, 'resourceVersion', opts.resourceVersion);
  setIf(q, 'resourceVersionMatch', opts.resourceVersionMatch);
  setIf(q, 'timeoutSeconds', opts.timeoutSeconds);
  if (opts.allowWatchBookmarks) q.set('allowWatchBookmarks', 'true');
  if (opts.sendInitialEvents !== undefined) q.set('sendInitialEvents', String(opts.sendInitialEvents));
  return q;
}

export function writeQuery(opts: {
  fieldManager?: string;
  dryRun?: boolean;
  force?: boolean;
}): URLSearchParams {
  const q = new URLSearchParams();
  setIf(q, 'fieldManager', opts.fieldManager);
  if (opts.dryRun) q.set('dryRun', 'All');
  if (opts.force !== undefined) q.set('force', String(opts.force));
  return q;
}

/** The metav1.DeleteOptions body of a DELETE, or undefined when there is nothing to say. */
export function deleteBody(opts: DeleteOptions = {}): Record<string, unknown> | undefined {
  const body: Record<string, unknown> = {};
  if (opts.preconditions && (opts.preconditions.uid || opts.preconditions.resourceVersion))
    body.preconditions = opts.preconditions;
  if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
  if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
  if (Object.keys(body).length === 0) return undefined;
  return { apiVersion: 'v1', kind: 'DeleteOptions', ...body };
}

export const patchContentTypes: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
  // JSON is valid YAML, so an apply body is sent as JSON under the YAML type.
  apply: 'application/apply-patch+yaml',
};

/** Accept headers for metadata-only reads; the plain JSON fallback is for servers without the meta.k8s.io conversion. */
export const metadataListAccept =
  'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
export const metadataWatchAccept =
  'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

export function withQuery(path: string, q: URLSearchParams): string {
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
