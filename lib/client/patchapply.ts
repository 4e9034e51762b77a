/**
 * Patch algorithms applied locally, for the fake client (the real client sends patches to the
 * apiserver and never applies them itself).
 *
 * - JSON merge patch: RFC 7386.
 * - JSON patch: RFC 6902 (add, remove, replace, move, copy, test).
 * - Strategic merge patch: a simplification. The apiserver reads merge keys from the Go
 *   struct tags of each type; we know only the few list fields ts-kcm touches (see
 *   `strategicListKeys`). Every other list is replaced, as in a merge patch. The directives
 *   `$patch: delete` (list items and maps), `$patch: replace` (maps) and
 *   `$deleteFromPrimitiveList/<field>` are honoured; `$setElementOrder/<field>` and
 *   `$retainKeys` are dropped.
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

export class PatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PatchError';
  }
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? { ...(clone(target) as JsonObject) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value) as Json;
  }
  return result;
}

export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: unknown;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`invalid JSON pointer ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The container holding the last token of `path`, and that token. */
function locate(doc: Json, path: string[], pointer: string): { parent: Json; key: string } {
  let cur: Json = doc;
  for (const token of path.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(cur)
      ? cur[arrayIndex(cur, token, pointer, false)]
      : isObject(cur)
        ? cur[token]
        : undefined;
    if (next === undefined) throw new PatchError(`path ${pointer} does not exist`);
    cur = next;
  }
  return { parent: cur, key: path[path.length - 1] };
}

function arrayIndex(arr: Json[], token: string, pointer: string, forInsert: boolean): number {
  if (forInsert && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token))
    throw new PatchError(`invalid array index ${JSON.stringify(token)} in ${pointer}`);
  const i = Number(token);
  if (i > arr.length || (!forInsert && i === arr.length))
    throw new PatchError(`array index ${i} out of range in ${pointer}`);
  return i;
}

function getAt(doc: Json, pointer: string): Json {
  const path = parsePointer(pointer);
  if (path.length === 0) return doc;
  const { parent, key } = locate(doc, path, pointer);
  const v = Array.isArray(parent)
    ? parent[arrayIndex(parent, key, pointer, false)]
    : isObject(parent)
      ? parent[key]
      : undefined;
  if (v === undefined) throw new PatchError(`path ${pointer} does not exist`);
  return v;
}

/** The value at `pointer`; null when the last member is absent (its parent must exist). */
function valueOrNullAt(doc: Json, pointer: string): Json {
  const path = parsePointer(pointer);
  if (path.length === 0) return doc;
  const { parent, key } = locate(doc, path, pointer);
  if (isObject(parent)) return parent[key] ?? null;
  return getAt(doc, pointer);
}

function removeAt(doc: Json, pointer: string): Json {
  const path = parsePointer(pointer);
  if (path.length === 0) throw new PatchError('cannot remove the whole document');
  const { parent, key } = locate(doc, path, pointer);
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, key, pointer, false), 1)[0];
  if (!isObject(parent) || !(key in parent)) throw new PatchError(`path ${pointer} does not exist`);
  const v = parent[key];
  delete parent[key];
  return v;
}

/** Returns the new document (the root may be replaced). */
function addAt(doc: Json, pointer: string, value: Json, replace: boolean): Json {
  const path = parsePointer(pointer);
  if (path.length === 0) return value;
  const { parent, key } = locate(doc, path, pointer);
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, key, pointer, !replace);
    parent.splice(i, replace ? 1 : 0, value);
  } else if (isObject(parent)) {
    if (replace && !(key in parent)) throw new PatchError(`path ${pointer} does not exist`);
    parent[key] = value;
  } else {
    throw new PatchError(`path ${pointer} does not exist`);
  }
  return doc;
}

/** Structural equality of JSON values. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

/** RFC 6902. Throws PatchError when an operation fails (including a failed `test`). */
export function applyJsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be an array of operations');
  let doc = clone(target) as Json;
  for (const raw of ops as JsonPatchOp[]) {
    const value = clone(raw.value) as Json;
    switch (raw.op) {
      case 'add':
        doc = addAt(doc, raw.path, value, false);
        break;
      case 'replace':
        doc = addAt(doc, raw.path, value, true);
        break;
      case 'remove':
        removeAt(doc, raw.path);
        break;
      case 'move': {
        const v = removeAt(doc, requireFrom(raw));
        doc = addAt(doc, raw.path, v, false);
        break;
      }
      case 'copy':
        doc = addAt(doc, raw.path, clone(getAt(doc, requireFrom(raw))), false);
        break;
      case 'test':
        // As the apiserver's json-patch (evanphx/json-patch v4): a member absent from an
        // existing object tests equal to null, so `test null` guards "not there yet".
        if (!deepEqual(valueOrNullAt(doc, raw.path), raw.value ?? null)) {
          throw new PatchError(
            `test operation failed: value at ${raw.path} is not ${JSON.stringify(raw.value)}`,
          );
        }
        break;
      default:
        throw new PatchError(`unknown JSON patch operation ${JSON.stringify((raw as { op?: unknown }).op)}`);
    }
  }
  return doc;
}

function requireFrom(op: JsonPatchOp): string {
  if (op.from === undefined) throw new PatchError(`${op.op} operation needs "from"`);
  return op.from;
}

/**
 * List fields the fake merges strategically, by dotted path from the object root.
 * `null` means a list of primitives merged as a set union (patchStrategy=merge without key).
 */
export const strategicListKeys: Record<string, string | null> = {
  'metadata.finalizers': null,
  'metadata.ownerReferences': 'uid',
  'status.reservedFor': 'uid',
  'status.conditions': 'type',
  'spec.containers': 'name',
  'spec.initContainers': 'name',
  'spec.resourceClaims': 'name',
  'status.containerStatuses': 'name',
};

/** Strategic merge patch with the simplifications described at the top of this file. */
export function applyStrategicMergePatch(target: unknown, patch: unknown): unknown {
  return strategicMerge(target, patch, '');
}

function strategicMerge(target: unknown, patch: unknown, path: string): unknown {
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') {
    const rest = { ...patch };
    delete rest.$patch;
    return clone(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  const result: JsonObject = isObject(target) ? (clone(target) as JsonObject) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$setElementOrder/') || key === '$retainKeys' || key === '$patch') continue;
    if (key.startsWith('$deleteFromPrimitiveList/')) {
      const field = key.slice('$deleteFromPrimitiveList/'.length);
      const drop = Array.isArray(value) ? value : [];
      const cur = result[field];
      if (Array.isArray(cur)) result[field] = cur.filter((v) => !drop.some((d) => deepEqual(d, v)));
      continue;
    }
    const childPath = path ? `${path}.${key}` : key;
    if (value === null) {
      delete result[key];
    } else if (Array.isArray(value) && childPath in strategicListKeys) {
      result[key] = mergeList(result[key], value, strategicListKeys[childPath]);
    } else {
      const merged = strategicMerge(result[key], value, childPath);
      if (merged === undefined) delete result[key];
      else result[key] = merged as Json;
    }
  }
  return result;
}

/**
 * Like the apiserver without a `$setElementOrder` directive: the patch's items come first, in
 * the patch's order (merged into their originals when the key matches), then the original
 * items the patch did not mention, in their original order.
 */
function mergeList(current: Json | undefined, patch: Json[], mergeKey: string | null): Json[] {
  const original: Json[] = Array.isArray(current) ? (clone(current) as Json[]) : [];
  const out: Json[] = [];
  const used = new Set<number>();
  if (mergeKey === null) {
    for (const v of patch) {
      if (out.some((o) => deepEqual(o, v))) continue;
      out.push(clone(v));
      const i = original.findIndex((o) => deepEqual(o, v));
      if (i >= 0) used.add(i);
    }
  } else {
    for (const item of patch) {
      if (!isObject(item) || !(mergeKey in item)) {
        out.push(clone(item));
        continue;
      }
      const i = original.findIndex(
        (o, idx) => !used.has(idx) && isObject(o) && deepEqual(o[mergeKey], item[mergeKey]),
      );
      if (i >= 0) used.add(i);
      if (item.$patch === 'delete') continue;
      out.push(strategicMerge(i >= 0 ? original[i] : undefined, item, '') as Json);
    }
  }
  original.forEach((o, idx) => {
    if (!used.has(idx)) out.push(o);
  });
  return out;
}
