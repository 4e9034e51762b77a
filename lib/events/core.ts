/**
 * core/v1 Events the way kube-controller-manager's recorders write them (client-go
 * tools/record): `source.component` names the controller, repeats bump `count` and
 * `lastTimestamp` of the first Event through a patch, and a burst of similar events about
 * one object (same reason, different messages) is folded into one "combined" Event.
 */
import { LRUCache } from 'lru-cache';
import { formatTime, type KubeObject } from '../api/index.js';
import { sourceAndObject, type EventInput, type ObjectReference } from './event.js';
import type { EventType } from './types.js';

/** A core/v1 Event as we write it. */
export interface CoreEvent extends KubeObject {
  involvedObject: ObjectReference;
  reason: string;
  message: string;
  source: { component?: string; host?: string };
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
  type: EventType;
  reportingComponent: string;
  reportingInstance: string;
}

/** client-go's correlator figures: 10 distinct messages within 10 minutes become one combined Event. */
export const AGGREGATE_MAX_EVENTS = 10;
export const AGGREGATE_INTERVAL_MS = 10 * 60_000;
export const AGGREGATE_PREFIX = '(combined from similar events): ';
/** Entries kept by the aggregation and dedup caches (client-go's maxLruCacheEntries). */
const CACHE_ENTRIES = 4096;

export function buildCoreEvent(
  input: EventInput,
  message: string,
  nowMs: number,
  uniquifier: number,
): CoreEvent {
  const nanos = BigInt(Math.floor(nowMs)) * 1_000_000n + BigInt(uniquifier % 1_000_000);
  const stamp = formatTime(nowMs);
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: {
      name: `${input.regarding.name ?? 'unknown'}.${nanos.toString(16)}`,
      namespace: input.regarding.namespace || 'default',
    },
    involvedObject: input.regarding,
    reason: input.reason,
    message,
    source: input.reportingInstance
      ? { component: input.reportingController, host: input.reportingInstance }
      : { component: input.reportingController },
    firstTimestamp: stamp,
    lastTimestamp: stamp,
    count: 1,
    type: input.type,
    reportingComponent: input.reportingController,
    reportingInstance: input.reportingInstance,
  };
}

interface SimilarEvents {
  messages: Set<string>;
  since: number;
}

/** What to write for an event: the dedup key it is counted under, and its message. */
export interface Correlated {
  key: string;
  message: string;
}

/**
 * Aggregation and dedup keys for core/v1 Events. Events that differ only in their message
 * are "similar"; while fewer than AGGREGATE_MAX_EVENTS distinct messages were seen for a
 * similar group within the interval, each message is its own Event (counted on repeat);
 * past that, they all count on one combined Event.
 */
export class CoreEventCorrelator {
  private readonly similar = new LRUCache<string, SimilarEvents>({ max: CACHE_ENTRIES });

  correlate(e: EventInput, nowMs: number): Correlated {
    const similarKey = JSON.stringify([...sourceAndObject(e), e.type, e.reason]);
    let group = this.similar.get(similarKey);
    if (!group || nowMs - group.since > AGGREGATE_INTERVAL_MS) {
      group = { messages: new Set(), since: nowMs };
      this.similar.set(similarKey, group);
    }
    group.messages.add(e.note);
    if (group.messages.size >= AGGREGATE_MAX_EVENTS) {
      return { key: JSON.stringify([similarKey, '']), message: AGGREGATE_PREFIX + e.note };
    }
    return { key: JSON.stringify([similarKey, e.note]), message: e.note };
  }
}

/** The Event last written under a dedup key. */
export interface CoreCacheEntry {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
}

export function newCoreEventCache(): LRUCache<string, CoreCacheEntry> {
  return new LRUCache<string, CoreCacheEntry>({ max: CACHE_ENTRIES });
}
