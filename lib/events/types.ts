import type { KubeObject } from '../api/index.js';

export type EventType = 'Normal' | 'Warning';

/** Records events.k8s.io/v1 Events about an object; never throws, never blocks the caller. */
export interface EventRecorder {
  event(regarding: KubeObject, type: EventType, reason: string, action: string, note: string): void;
}
