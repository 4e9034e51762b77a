import { describe, expect, test } from '@jest/globals';
import { checkLeaderWrites, parseAuditLog, type AuditEvent, type LeaseRecord } from './leader-audit.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

function write(ua: string, s: number, verb = 'update'): AuditEvent {
  return {
    stage: 'ResponseComplete',
    verb,
    userAgent: ua,
    objectRef: { resource: 'servicecidrs', name: 'x' },
    requestReceivedTimestamp: at(s),
    stageTimestamp: at(s + 0.01),
  };
}

// A leads from 0 s (renewing each second until 10 s) and dies; B acquires at 17 s.
const history: LeaseRecord[] = [
  ...Array.from({ length: 11 }, (_, k) => ({ holder: 'id-a', acquiredMs: T0, renewMs: T0 + k * 1000 })),
  { holder: 'id-b', acquiredMs: T0 + 17_000, renewMs: T0 + 17_000 },
  { holder: 'id-b', acquiredMs: T0 + 17_000, renewMs: T0 + 18_000 },
];
const identityOf = (ua: string) => ({ 'ts-kcm/a': 'id-a', 'ts-kcm/b': 'id-b' })[ua];
const bound = { renewDeadlineMs: 4_000, slackMs: 1_000 };

describe('checkLeaderWrites', () => {
  test('writes inside each leadership window pass', () => {
    const r = checkLeaderWrites(
      [
        write('ts-kcm/a', 0.5),
        write('ts-kcm/a', 9.9),
        write('ts-kcm/b', 17.2, 'patch'),
        write('ts-kcm/b', 20),
      ],
      history,
      identityOf,
      bound,
    );
    expect(r).toEqual({ checked: 4, leaderships: 2, violations: [] });
  });

  test('two replicas writing at once: the old leader after the new one acquired', () => {
    const r = checkLeaderWrites([write('ts-kcm/a', 17.5)], history, identityOf, bound);
    expect(r.violations).toEqual([
      expect.stringContaining('after id-b acquired the Lease at 2026-01-01T00:00:17.000Z'),
      expect.stringContaining('7500 ms after its last renew'),
    ]);
  });

  test('a write past the renew deadline (+ slack) after the last renew, before anyone else leads', () => {
    expect(checkLeaderWrites([write('ts-kcm/a', 14.9)], history, identityOf, bound).violations).toEqual([]);
    expect(checkLeaderWrites([write('ts-kcm/a', 15.2)], history, identityOf, bound).violations).toEqual([
      expect.stringContaining('5200 ms after its last renew'),
    ]);
  });

  test('a write before acquiring, or from an unknown user agent, is a violation', () => {
    const r = checkLeaderWrites([write('ts-kcm/b', 3), write('ts-kcm/c', 3)], history, identityOf, bound);
    expect(r.violations).toEqual([
      expect.stringContaining('before id-b ever acquired the Lease'),
      expect.stringContaining('no Lease identity known'),
    ]);
  });

  test('only finished writes count', () => {
    const get = { ...write('ts-kcm/a', 30), verb: 'get' };
    const started = { ...write('ts-kcm/a', 30), stage: 'ResponseStarted' };
    expect(checkLeaderWrites([get, started], history, identityOf, bound).checked).toBe(0);
  });

  test('parses JSON lines', () => {
    const text = `${JSON.stringify(write('ts-kcm/a', 1))}\n\n${JSON.stringify(write('ts-kcm/b', 18))}\n`;
    expect(parseAuditLog(text).map((e) => e.userAgent)).toEqual(['ts-kcm/a', 'ts-kcm/b']);
  });
});
