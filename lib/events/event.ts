import { formatMicroTime, type Event, type KubeObject } from '../api/index.js';
import type { EventType } from './types.js';

/** Field limits the apiserver validates for events.k8s.io/v1 (longer values are rejected, so we cut them). */
const NOTE_LIMIT_BYTES = 1024;
const REASON_ACTION_LIMIT = 128;
const REPORTING_LIMIT = 128;

export type ObjectReference = Event['regarding'];

export function referenceOf(obj: KubeObject): ObjectReference {
  const ref: ObjectReference = {};
  if (obj.apiVersion) ref.apiVersion = obj.apiVersion;
  if (obj.kind) ref.kind = obj.kind;
  if (obj.metadata.namespace) ref.namespace = obj.metadata.namespace;
  if (obj.metadata.name) ref.name = obj.metadata.name;
  if (obj.metadata.uid) ref.uid = obj.metadata.uid;
  if (obj.metadata.resourceVersion) ref.resourceVersion = obj.metadata.resourceVersion;
  return ref;
}

export interface EventInput {
  regarding: ObjectReference;
  type: EventType;
  reason: string;
  action: string;
  note: string;
  reportingController: string;
  reportingInstance: string;
}

/**
 * A new Event as client-go's events/v1 recorder makes it: named `<regarding>.<unix nanos in hex>`
 * (unique enough and sortable), in the regarding object's namespace or `default` for
 * cluster-scoped objects.
 */
export function buildEvent(input: EventInput, nowMs: number, uniquifier: number): Event {
  const nanos = BigInt(Math.floor(nowMs)) * 1_000_000n + BigInt(uniquifier % 1_000_000);
  const namespace = input.regarding.namespace || 'default';
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: `${input.regarding.name ?? 'unknown'}.${nanos.toString(16)}`, namespace },
    eventTime: formatMicroTime(nowMs),
    reportingController: input.reportingController.slice(0, REPORTING_LIMIT),
    reportingInstance: input.reportingInstance.slice(0, REPORTING_LIMIT),
    action: input.action.slice(0, REASON_ACTION_LIMIT),
    reason: input.reason.slice(0, REASON_ACTION_LIMIT),
    regarding: input.regarding,
    note: truncateBytes(input.note, NOTE_LIMIT_BYTES),
    type: input.type,
  };
}

/**
 * Events that are "the same thing happening again" share this key and are folded into one
 * series. The note is not part of it, as in client-go's events/v1 recorder: a series keeps
 * the note of its first Event, so a note that embeds changing detail still makes one series.
 */
export function aggregationKey(e: EventInput): string {
  const r = e.regarding;
  return JSON.stringify([
    r.apiVersion ?? '',
    r.kind ?? '',
    r.namespace ?? '',
    r.name ?? '',
    r.uid ?? '',
    e.reason,
    e.action,
    e.type,
    e.reportingController,
  ]);
}

/** The reporting source and the regarding object: the parts every event key starts with. */
export function sourceAndObject(e: EventInput): string[] {
  const r = e.regarding;
  return [
    e.reportingController,
    e.reportingInstance,
    r.apiVersion ?? '',
    r.kind ?? '',
    r.namespace ?? '',
    r.name ?? '',
    r.uid ?? '',
  ];
}

/** Rate limits apply per (source, regarding object), like client-go's spam filter. */
export function spamKey(e: EventInput): string {
  return JSON.stringify(sourceAndObject(e));
}

function truncateBytes(s: string, limit: number): string {
  const buf = Buffer.from(s, 'utf8');
  if (buf.length <= limit) return s;
  // Cut on a character boundary: decoding a cut multi-byte sequence would add a replacement char.
  let out = buf.subarray(0, limit).toString('utf8');
  while (Buffer.byteLength(out, 'utf8') > limit) out = out.slice(0, -1);
  return out.replace(/\uFFFD$/, '');
}
