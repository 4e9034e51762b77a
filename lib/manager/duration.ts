/**
 * Go's time.ParseDuration, so flags read like kube-controller-manager's: "15s", "1m30s",
 * "500ms", "1.5h", "0". Returns milliseconds (fractional for sub-millisecond units).
 */
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

export function parseDuration(text: string): number {
  const s = text.trim();
  const fail = () => new Error(`invalid duration "${text}": use Go syntax like 15s, 1m30s or 500ms`);
  if (s === '0' || s === '+0' || s === '-0') return 0;
  const m = /^([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(s);
  if (!m) throw fail();
  let total = 0;
  for (const part of m[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * UNIT_MS[part[2]!]!;
  }
  return m[1] === '-' ? -total : total;
}

/** Go's Duration.String() for whole milliseconds, for help texts and logs: 15000 -> "15s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  if (rest < 1000) return `${sign}${rest}ms`;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const sec = rest / 1000;
  return `${sign}${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${sec}s`;
}
