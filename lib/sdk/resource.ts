/** resourceRef: name any resource (a CRD's included) for the client, informers and RBAC. */
import type { KubeObject } from '../api/index.js';
import type { ResourceRef } from '../client/types.js';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Checks the fields and returns a frozen ResourceRef; throws a message naming the bad field.
 * Typed: `resourceRef<Widget>({...})` makes `client.resource(ref)`, informers and
 * `defineController({ for: ref })` (its `ctx.get`/`ctx.list`, the request's object) use Widget.
 */
export function resourceRef<T extends KubeObject = KubeObject>(ref: ResourceRef): ResourceRef<T> {
  if (ref.group !== '' && !DNS1123_SUBDOMAIN.test(ref.group))
    throw new Error(`resourceRef: group "${ref.group}" is not a DNS subdomain ('' for the core group)`);
  if (!/^v[0-9]+((alpha|beta)[0-9]+)?$/.test(ref.version))
    throw new Error(
      `resourceRef: version "${ref.version}" is not a Kubernetes API version (v1, v1beta2, v1alpha1)`,
    );
  if (!/^[a-z][a-z0-9]*$/.test(ref.resource))
    throw new Error(`resourceRef: resource "${ref.resource}" must be the lower-case plural (e.g. "widgets")`);
  if (!/^[A-Z][A-Za-z0-9]*$/.test(ref.kind))
    throw new Error(`resourceRef: kind "${ref.kind}" must be UpperCamelCase (e.g. "Widget")`);
  return Object.freeze({ ...ref }) as ResourceRef<T>;
}
