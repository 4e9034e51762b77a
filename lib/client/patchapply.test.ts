import { describe, expect, it } from '@jest/globals';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from './patchapply.js';

describe('applyMergePatch (RFC 7386 appendix A)', () => {
  it.each([
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [
      ['a', 'b'],
      ['c', 'd'],
      ['c', 'd'],
    ],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])('%j + %j = %j', (target, patch, want) => {
    expect(applyMergePatch(target, patch)).toEqual(want);
  });

  it('does not modify its inputs', () => {
    const target = { a: { b: 1 } };
    applyMergePatch(target, { a: { b: 2 } });
    expect(target).toEqual({ a: { b: 1 } });
  });
});

describe('applyJsonPatch (RFC 6902)', () => {
  it('add, remove, replace, move, copy, test', () => {
    const doc = { foo: ['bar', 'baz'], 'a/b': { '~c': 1 } };
    const out = applyJsonPatch(doc, [
      { op: 'add', path: '/foo/1', value: 'qux' },
      { op: 'add', path: '/foo/-', value: 'end' },
      { op: 'remove', path: '/foo/0' },
      { op: 'replace', path: '/a~1b/~0c', value: 2 },
      { op: 'copy', from: '/foo/0', path: '/first' },
      { op: 'move', from: '/first', path: '/moved' },
      { op: 'test', path: '/moved', value: 'qux' },
    ]);
    expect(out).toEqual({ foo: ['qux', 'baz', 'end'], 'a/b': { '~c': 2 }, moved: 'qux' });
    expect(doc.foo).toEqual(['bar', 'baz']);
  });

  it('test null passes on an absent member of an existing object, as the apiserver', () => {
    const doc = { metadata: { name: 'x' } };
    expect(
      applyJsonPatch(doc, [
        { op: 'test', path: '/metadata/finalizers', value: null },
        { op: 'add', path: '/metadata/finalizers', value: ['f'] },
      ]),
    ).toEqual({ metadata: { name: 'x', finalizers: ['f'] } });
    expect(() =>
      applyJsonPatch({ metadata: { finalizers: ['g'] } }, [
        { op: 'test', path: '/metadata/finalizers', value: null },
      ]),
    ).toThrow('test operation failed: value at /metadata/finalizers is not null');
    expect(() => applyJsonPatch({}, [{ op: 'test', path: '/metadata/finalizers', value: null }])).toThrow(
      'path /metadata/finalizers does not exist',
    );
  });

  it.each([
    [[{ op: 'test', path: '/a', value: 2 }], 'test operation failed: value at /a is not 2'],
    [[{ op: 'test', path: '/b', value: 2 }], 'test operation failed: value at /b is not 2'],
    [[{ op: 'remove', path: '/nope' }], 'path /nope does not exist'],
    [[{ op: 'replace', path: '/nope', value: 1 }], 'path /nope does not exist'],
    [[{ op: 'add', path: '/l/5', value: 1 }], 'array index 5 out of range in /l/5'],
    [[{ op: 'add', path: 'x', value: 1 }], 'invalid JSON pointer "x"'],
    [[{ op: 'frob', path: '/a' }], 'unknown JSON patch operation "frob"'],
  ])('%j fails with %s', (ops, message) => {
    expect(() => applyJsonPatch({ a: 1, l: [] }, ops)).toThrow(message);
  });
});

describe('applyStrategicMergePatch (simplified)', () => {
  it('unions finalizers and merges reservedFor by uid, patch items first', () => {
    const obj = {
      metadata: { finalizers: ['z', 'a'] },
      status: { reservedFor: [{ uid: '1', name: 'p1' }], other: [1, 2] },
    };
    expect(
      applyStrategicMergePatch(obj, {
        metadata: { finalizers: ['a', 'b'] },
        status: {
          reservedFor: [
            { uid: '2', name: 'p2' },
            { uid: '1', name: 'renamed' },
          ],
          other: [3],
        },
      }),
    ).toEqual({
      metadata: { finalizers: ['a', 'b', 'z'] },
      status: {
        reservedFor: [
          { uid: '2', name: 'p2' },
          { uid: '1', name: 'renamed' },
        ],
        other: [3],
      },
    });
  });

  it('honours $patch: delete, $deleteFromPrimitiveList and drops $setElementOrder', () => {
    const obj = {
      metadata: { finalizers: ['a', 'b'] },
      status: { reservedFor: [{ uid: '1' }, { uid: '2' }] },
    };
    expect(
      applyStrategicMergePatch(obj, {
        metadata: { '$deleteFromPrimitiveList/finalizers': ['a'], '$setElementOrder/finalizers': ['b'] },
        status: { reservedFor: [{ uid: '1', $patch: 'delete' }] },
      }),
    ).toEqual({ metadata: { finalizers: ['b'] }, status: { reservedFor: [{ uid: '2' }] } });
  });

  it('merges conditions by type and replaces a map with $patch: replace', () => {
    const obj = {
      status: {
        conditions: [
          { type: 'Ready', status: 'False' },
          { type: 'X', status: 'True' },
        ],
      },
      spec: { a: 1, b: 2 },
    };
    expect(
      applyStrategicMergePatch(obj, {
        status: { conditions: [{ type: 'Ready', status: 'True' }] },
        spec: { $patch: 'replace', c: 3 },
      }),
    ).toEqual({
      status: {
        conditions: [
          { type: 'Ready', status: 'True' },
          { type: 'X', status: 'True' },
        ],
      },
      spec: { c: 3 },
    });
    expect(
      applyStrategicMergePatch(obj, { status: { conditions: [{ type: 'New', status: 'True' }] } }),
    ).toMatchObject({
      status: { conditions: [{ type: 'New' }, { type: 'Ready' }, { type: 'X' }] },
    });
  });
});
