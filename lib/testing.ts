/**
 * ts-kcm/testing: test doubles and a real control plane for your controller's tests —
 * FakeKubeClient (records every call, reactors script answers), FakeClock, fake informers
 * and queues, reconcileOnce for a defined controller, and startControlPlane (an envtest:
 * etcd + kube-apiserver with your CRDs installed).
 */
export {
  FakeKubeClient,
  ObjectTracker,
  type FakeAction,
  type FakeVerb,
  type Reactor,
  type FakeKubeClientOptions,
} from './client/index.js';
export { FakeClock } from './clock/index.js';
export {
  newNotFound,
  newAlreadyExists,
  newConflict,
  newGone,
  newInvalid,
  newBadRequest,
  newForbidden,
  newTooManyRequests,
} from './client/index.js';
export { FakeSharedIndexInformer } from './informer/index.js';
export { RecordingQueue } from './workqueue/index.js';
export { FakeEventRecorder, type RecordedEvent } from './events/index.js';
export { fakeSharding } from './sharding/testing.js';
export {
  reconcileOnce,
  waitFor,
  startControlPlane,
  readCRDs,
  type ReconcileOnceOptions,
  type StartControlPlaneOptions,
  type TestControlPlane,
} from './sdk/testing.js';
