import type { KubeObject } from '../api/index.js';
import type { EventRecorder, EventType } from './types.js';

export interface RecordedEvent {
  regarding: KubeObject;
  type: EventType;
  reason: string;
  action: string;
  note: string;
}

/** Keeps every event in `.events` so unit tests can assert exactly what a controller reported. */
export class FakeEventRecorder implements EventRecorder {
  readonly events: RecordedEvent[] = [];

  event(regarding: KubeObject, type: EventType, reason: string, action: string, note: string): void {
    this.events.push({ regarding, type, reason, action, note });
  }

  clear(): void {
    this.events.length = 0;
  }
}
