/**
 * Checks writes from an apiserver audit log against a Lease history: did any replica write
 * outside its leadership window? Pure, so the bound is unit-tested (leader-audit.test.ts)
 * apart from the fault suite's leader-churn scenario that feeds it real data.
 */

/** One audit.k8s.io/v1 Event (the fields read here), as --audit-log-format=json writes it. */
export interface AuditEvent {
  stage: string;
  verb: string;
  userAgent?: string;
  objectRef?: { resource?: string; name?: string };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

/** One observed state of the Lease (holderIdentity with its acquireTime and renewTime). */
export interface LeaseRecord {
  holder: string;
  acquiredMs: number;
  renewMs: number;
}

export interface LeaderAuditResult {
  checked: number;
  leaderships: number;
  violations: string[];
}

export const WRITE_VERBS: ReadonlySet<string> = new Set([
  'create',
  'update',
  'patch',
  'delete',
  'deletecollection',
]);

/** The JSON lines of an audit log, parsed (blank lines skipped). */
export function parseAuditLog(text: string): AuditEvent[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditEvent);
}

/**
 * For each finished write in EVENTS (ResponseComplete, a write verb) received at t from the
 * replica whose Lease identity IDENTITYOF(userAgent) is I, requires
 *   acquireTime(I) <= t,  t < acquireTime of the next different holder,  and
 *   t - (I's last renewTime at or before t) <= renewDeadlineMs + slackMs.
 * A write whose user agent maps to no identity is a violation too.
 */
export function checkLeaderWrites(
  events: readonly AuditEvent[],
  history: readonly LeaseRecord[],
  identityOf: (userAgent: string) => string | undefined,
  bound: { renewDeadlineMs: number; slackMs: number },
): LeaderAuditResult {
  const acquisitions = [...new Map(history.map((h) => [`${h.holder}|${h.acquiredMs}`, h])).values()]
    .map((h) => ({ holder: h.holder, acquiredMs: h.acquiredMs }))
    .sort((a, b) => a.acquiredMs - b.acquiredMs);
  const writes = events.filter((e) => e.stage === 'ResponseComplete' && WRITE_VERBS.has(e.verb));
  const violations: string[] = [];
  for (const e of writes) {
    const t = Date.parse(e.requestReceivedTimestamp);
    const ua = e.userAgent ?? '';
    const what = `${e.verb} ${e.objectRef?.name ?? ''} by ${ua} at ${e.requestReceivedTimestamp}`;
    const identity = identityOf(ua);
    if (!identity) {
      violations.push(`${what}: no Lease identity known for this user agent`);
      continue;
    }
    const mine = acquisitions.filter((a) => a.holder === identity && a.acquiredMs <= t).pop();
    if (!mine) {
      violations.push(`${what}: before ${identity} ever acquired the Lease`);
      continue;
    }
    const next = acquisitions.find((a) => a.acquiredMs > mine.acquiredMs && a.holder !== identity);
    if (next && t >= next.acquiredMs)
      violations.push(
        `${what}: after ${next.holder} acquired the Lease at ${new Date(next.acquiredMs).toISOString()}`,
      );
    const renews = history.filter((h) => h.holder === identity && h.renewMs <= t).map((h) => h.renewMs);
    const lastRenew = Math.max(mine.acquiredMs, ...renews);
    if (t - lastRenew > bound.renewDeadlineMs + bound.slackMs)
      violations.push(`${what}: ${t - lastRenew} ms after its last renew`);
  }
  return { checked: writes.length, leaderships: acquisitions.length, violations };
}
