import { DateTime } from 'luxon';

/**
 * The two timestamp formats Kubernetes puts on the wire, in one place. metav1.Time is
 * RFC 3339 in UTC with whole seconds; metav1.MicroTime (events, leases) carries exactly
 * six fractional digits. We hold milliseconds, so the last three digits are always zero.
 */

const UTC = { zone: 'utc' } as const;

/** RFC 3339 date-time: luxon's fromISO also takes date-only, week and ordinal forms, which the apiserver never sends. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;

/** metav1.Time: `2026-01-01T00:00:05Z` (sub-second part cut, not rounded, like Go's Truncate). */
export function formatTime(ms: number): string {
  return DateTime.fromMillis(ms, UTC).toFormat("yyyy-MM-dd'T'HH:mm:ss'Z'");
}

/** metav1.MicroTime: `2026-01-01T00:00:05.123000Z`. */
export function formatMicroTime(ms: number): string {
  return DateTime.fromMillis(ms, UTC).toFormat("yyyy-MM-dd'T'HH:mm:ss.SSS'000Z'");
}

/**
 * Epoch milliseconds of an RFC 3339 timestamp (fraction and offset optional; no offset
 * means UTC), or undefined when `s` is empty or not a valid date-time.
 */
export function parseTime(s: string | undefined | null): number | undefined {
  if (!s || !RFC3339.test(s)) return undefined;
  const t = DateTime.fromISO(s, UTC);
  return t.isValid ? t.toMillis() : undefined;
}
