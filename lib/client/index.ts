/** Package client: REST access to the apiserver with throttling, typed errors and metrics. */
export * from './types.js';
export * from './errors.js';
export { FakeKubeClient } from './fake.js';
export type { FakeAction, FakeVerb, Reactor, FakeKubeClientOptions } from './fake.js';
export { ObjectTracker } from './tracker.js';
export { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError, strategicListKeys } from './patchapply.js';
export type { JsonPatchOp } from './patchapply.js';
export { labelSelectorMatcher, fieldSelectorMatcher } from './selectors.js';
