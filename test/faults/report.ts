/**
 * Writes docs/reliability.md from the last `npm run faults` (docs/reliability/faults.json and
 * every other suite's faults-*.json, see test/support/fault-report.ts) and
 * the last `npm run soak` (soak.json, soak.svg). Run by both; runnable alone to re-render.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OUT_DIR = join(ROOT, 'docs', 'reliability');
const DOC = join(ROOT, 'docs', 'reliability.md');

export interface ScenarioResult {
  scenario: string;
  created?: number;
  deleted?: number;
  faults: number;
  recoveryMs: number | null;
  violations: number;
  note?: string;
}

export interface SoakResult {
  minutes: number;
  warmupSeconds: number;
  samples: number;
  created: number;
  deleted: number;
  faults: number;
  faultKinds: string[];
  convergeMs: number;
  violations: number;
  growth: { rss: number; heap: number; handles: number; lag: number };
  /** Mean number of the soak's ServiceCIDRs in the apiserver in the first and last window. */
  live?: { early: number; late: number };
  /** Heap growth compared by window means instead of floors (shown for comparison). */
  growthOfMeans?: { heap: number };
  /** The churn's cap on live ServiceCIDRs. */
  maxLive?: number;
  final?: { rss: number; heap: number; handles: number; lag: number };
  at: string;
}

const INJECTED: Record<string, string> = {
  cuts: 'every connection cut every 2-5 s, a reset mid-line every 3 s, 0-15 ms jitter',
  refuse: 'connections cut, then new ones refused until ts-kcm has tried again',
  stall: 'every open connection silently swallows bytes (half-open) for 120 s',
  'apiserver-kill': 'kube-apiserver SIGKILL + restart between two churns',
  'etcd-kill': 'etcd SIGKILL + restart between two churns',
  compaction: 'cut off, objects changed and deleted, etcd compacted, apiserver restarted (410 on resume)',
  '429': '429 with Retry-After 2 s for every request (HTTP proxy), watches cut half-way',
  'leader-churn':
    'three replicas under leader election (6 s lease, 4 s renew deadline), the leader SIGKILLed every 20 s for 3 min and restarted; every ServiceCIDR write in the apiserver audit log checked against the watched Lease history',
  garbage: 'truncated JSON (50 %), text/html 200 (50 %), then a 500 storm (100 %), watches cut half-way',
  'lbipam-cuts':
    'service-lb-ipam-controller: every connection cut every 2-5 s, a reset mid-line every 3 s, 0-15 ms jitter, while LoadBalancer Services are created, relabelled, deleted and switched LoadBalancer ↔ ClusterIP over an 8-address pool (3 s release hold)',
  'lbipam-kill':
    'service-lb-ipam-controller: ts-kcm SIGKILLed 2 s into a Service churn and restarted (state rebuilt from the IPAddress objects)',
  'apf-inflight-1':
    'ts-kcm as a ServiceAccount (not exempt); kube-apiserver restarted with --max-requests-inflight=1 --max-mutating-requests-inflight=1, APF on',
  'maxinflight-1':
    'the same two flags with --enable-priority-and-fairness=false (classic in-flight limits: 429 at once)',
  'apf-normal-again': 'kube-apiserver restarted with its normal flags after the two tiny-limit restarts',
  'claims-cuts':
    'resourceclaim-controller: every connection cut every 2-5 s while pods with claim templates (and shared claims) are created, allocated + reserved, run, finished and deleted',
  'claims-conflicts':
    "resourceclaim-controller: two writers updating every claim's labels with the listed resourceVersion in a loop, and the test's scheduler adding reservations to shared claims, during the same churn; faults = 409 Conflict answers ts-kcm got",
};

/** The rows of lib/cli/bad-input.test.ts and of the integration scenarios for odd objects. */
const BAD_INPUT: [string, string, string][] = [
  [
    'malformed kubeconfig (not YAML)',
    'exit 2: `error: kubeconfig PATH: <parse error>`',
    'lib/cli/bad-input.test.ts',
  ],
  ['kubeconfig context naming no cluster', 'exit 2: `… names no cluster`', 'lib/cli/bad-input.test.ts'],
  ['missing kubeconfig file', 'exit 2: `… does not exist`', 'lib/cli/bad-input.test.ts'],
  ['client certificate file unreadable', 'exit 2: `… cannot be read: ENOENT …`', 'lib/cli/bad-input.test.ts'],
  [
    'expired client certificate',
    'exit 2: `client certificate of user "u" (CN=…) expired on …`',
    'lib/cli/bad-input.test.ts',
  ],
  [
    'in-cluster token file empty / unreadable',
    'exit 2: `token file … cannot be used: …`',
    'lib/cli/bad-input.test.ts',
  ],
  [
    'rotated token file',
    're-read at most once a minute and at once after a 401',
    'lib/client/client.test.ts',
  ],
  [
    '`--kube-api-qps=-5`, `--shutdown-timeout=-1s`, `--min-resync-period=-1h`',
    'exit 2 with the flag named',
    'lib/cli/run.test.ts, bad-input.test.ts',
  ],
  ['`--kube-api-burst=0` with qps > 0', 'exit 2 (client-go refuses it too)', 'lib/cli/bad-input.test.ts'],
  ['`--concurrent-*-syncs=0`', 'exit 2 (a queue nobody drains)', 'lib/cli/bad-input.test.ts'],
  ['lease duration ≤ renew deadline', 'exit 2', 'lib/cli/bad-input.test.ts'],
];

const ms = (v: number | null | undefined) =>
  v === null || v === undefined ? 'never' : `${(v / 1000).toFixed(1)} s`;
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

function percentile(xs: number[], p: number): number | null {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))];
}

function readJson<T>(name: string): T | undefined {
  const file = join(OUT_DIR, name);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
}

interface FaultsFile {
  full: boolean;
  scenarios: ScenarioResult[];
  at?: string;
}

/** faults.json and the other suites' faults-*.json as one run: the latest time, full only if all were. */
function readFaults(): FaultsFile | undefined {
  const names = existsSync(OUT_DIR)
    ? readdirSync(OUT_DIR)
        .filter((n) => /^faults(-[a-z0-9-]+)?\.json$/.test(n))
        .sort()
    : [];
  const files = names.map((n) => readJson<FaultsFile>(n)).filter((f): f is FaultsFile => f !== undefined);
  if (files.length === 0) return undefined;
  const at = files
    .map((f) => f.at)
    .filter((t): t is string => t !== undefined)
    .sort()
    .at(-1);
  return { full: files.every((f) => f.full), at, scenarios: files.flatMap((f) => f.scenarios) };
}

export function writeReport(): void {
  const faults = readFaults();
  const soak = readJson<SoakResult>('soak.json');
  const lines: string[] = [
    '# Reliability: nothing lost under faults',
    '',
    'Generated by `npm run faults` and `npm run soak -- --minutes N` (test/faults/report.ts); do not edit by hand.',
    'Every scenario runs ts-kcm (service-cidr-controller) against a private kube-apiserver + etcd,',
    'through a fault-injecting proxy (test/support/fault-proxy.ts for TCP faults,',
    'test/support/http-fault-proxy.ts for HTTP answers), while the test churns ServiceCIDRs;',
    'the invariants (test/support/invariants.ts) are read from the apiserver: every live',
    'ServiceCIDR finalized and Ready, every deleted one gone, none released before its 10 s grace.',
    'The lbipam-* rows run service-lb-ipam-controller instead, churning LoadBalancer Services',
    '(test/support/lbipam-invariants.ts: no IP in two Services at once, sampled every 200 ms; every',
    'ingress IP backed by its own unreleased IPAddress; no orphaned IPAddress or one held past its hold;',
    'every Service that wants an IP has one); the apf/maxinflight rows run ts-kcm as a ServiceAccount so',
    "kube-apiserver's own concurrency limits, which exempt system:masters, apply to it.",
    'Leader churn (full suite only) runs three replicas straight against an apiserver with an audit',
    "log: each replica's User-Agent (`--user-agent=ts-kcm/<id>`) is tied to the Lease identity it logs,",
    'and a ServiceCIDR write received at t from identity I fails the check unless',
    "acquireTime(I) ≤ t < acquireTime(next holder) and t − (I's last renewTime ≤ t) ≤ renew deadline + 1 s.",
    'The claims-* rows (test/integration/faults-claims.test.ts) run the resourceclaim-controller the same way while the',
    'test plays scheduler and kubelet, checking test/support/claim-invariants.ts: generated claims of finished or deleted pods',
    'gone, no reservation removed before its pod was done, no claim deallocated while reserved, each reservation removed once.',
    '',
    '## How a silent (half-open) connection is noticed',
    '',
    'Over HTTP/2 (the default against an apiserver; lib/client/h2.ts) every request and watch is a stream of one',
    'connection, checked as client-go checks it: nothing read for 30 s, a ping; no answer within 15 s, the connection',
    'and all its streams fail, and the next request dials a new one. The guards below hold on either protocol; the',
    'HTTP/1.1 ones are what remains when the server or a proxy speaks only HTTP/1.1.',
    '',
    '| what | bound | how |',
    '| --- | --- | --- |',
    '| any stream, HTTP/2 | ≤ 45 s | 30 s without a frame read, then a 15 s ping timeout (client-go: golang.org/x/net/http2 ReadIdleTimeout and PingTimeout); a session already closing (GOAWAY, new TLS material), on which Node sends no ping, is failed at the same deadline |',
    '| new HTTP/2 connection | 30 s TCP, 10 s TLS | a connect or handshake that goes silent fails the request (client-go: dialer Timeout, TLSHandshakeTimeout) instead of holding every later one |',
    '| watch | ≤ 35 s | watches ask for `timeoutSeconds` 25-30 s; one still open 5 s past that is dropped and resumed from its resourceVersion (bookmarks come only about once a minute) |',
    '| request in flight | 30 s | no byte for 30 s fails the request (NetworkError, retried by its caller) |',
    '| the rest of a silent HTTP/2 connection | at once, then 15 s | when a watch or request guard above fires, its session gets no new stream (the re-watch or retry dials a new connection) and is pinged: no answer within 15 s fails its other streams, an answer closes it gently |',
    '| pooled idle socket, HTTP/1.1 | 15 s | closed after 15 s idle, so no request is sent on a link that stalled while idle |',
    '| vanished peer | 30 s + 10 × 1 s | TCP keep-alive on every socket (Node sets 10 probes 1 s apart); a proxy that keeps TCP alive defeats it, hence the guards above |',
    '',
    '## Fault scenarios',
    '',
  ];
  if (!faults) lines.push('No `npm run faults` result yet.', '');
  else {
    const rec = faults.scenarios.map((s) => s.recoveryMs).filter((v): v is number => v !== null);
    lines.push(
      `Last run: ${faults.full ? 'full (`npm run faults`)' : 'short (`npm test`)'}${faults.at ? `, ${faults.at}` : ''}. ` +
        `Recovery is the time from the last fault to all invariants holding (stall: from the stall's start to the late object's reconcile).`,
      '',
      '| scenario | injected | objects (created / deleted) | faults | recovery | violations | notes |',
      '| --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const s of faults.scenarios) {
      const objects = s.created === undefined ? '—' : `${s.created} / ${s.deleted ?? 0}`;
      lines.push(
        `| ${s.scenario} | ${INJECTED[s.scenario] ?? ''} | ${objects} | ${s.faults} | ${ms(s.recoveryMs)} | ${s.violations} | ${s.note ?? ''} |`,
      );
    }
    lines.push(
      '',
      `Recovery over all scenarios: p50 ${ms(percentile(rec, 0.5))}, max ${ms(percentile(rec, 1))}; ` +
        `violations ${faults.scenarios.reduce((n, s) => n + s.violations, 0)}.`,
      '',
    );
  }
  lines.push(
    '## Bad input',
    '',
    'A credential or flag that can never work ends the start with one line on stderr and exit code 2,',
    'never a stack trace and never a manager that starts and then retries 401s forever.',
    '',
    '| input | behaviour | test |',
    '| --- | --- | --- |',
    ...BAD_INPUT.map(([a, b, c]) => `| ${a} | ${b} | ${c} |`),
    '',
    '## Soak',
    '',
  );
  if (!soak) lines.push('No `npm run soak` result yet.', '');
  else {
    const flat = Math.max(soak.growth.rss, soak.growth.heap, soak.growth.handles) < 0.1;
    lines.push(
      `${soak.minutes} minutes (${soak.at}): ${soak.created} ServiceCIDRs created, ${soak.deleted} deleted, ` +
        `${soak.faults} faults (${soak.faultKinds.join(', ')}), violations ${soak.violations}. ` +
        `Samples every 5 s from ts-kcm's /metrics; growth compares the first and last fifth after the ` +
        `${soak.warmupSeconds} s warm-up (dashed line): the window means for RSS, handles and lag, the ` +
        `window minimum for V8 heap used (the sample just after a collection: what is live; samples ` +
        `elsewhere on the saw-tooth mostly count garbage not yet collected, and a leak raises the floor; ` +
        `the growth of the heap's window means is in brackets). RSS follows the heap V8 reserves, ` +
        `which it grows and gives back in steps of tens of MB every few minutes, so a short run's RSS ` +
        `windows can sit at different points of that cycle. ` +
        `The churn keeps at most ${soak.maxLive ?? 150} ServiceCIDRs alive (each new one past that deletes the oldest), ` +
        `so what ts-kcm caches does not grow with the run` +
        (soak.live
          ? `: ${soak.live.early.toFixed(0)} soak ServiceCIDRs in the apiserver in the first window, ${soak.live.late.toFixed(0)} in the last.`
          : '.'),
      '',
      '| RSS | V8 heap used | active handles | event-loop lag p99 | flat (< 10 %) |',
      '| --- | --- | --- | --- | --- |',
      `| ${pct(soak.growth.rss)} | ` +
        `${pct(soak.growth.heap)}${soak.growthOfMeans ? ` (${pct(soak.growthOfMeans.heap)})` : ''} | ${pct(soak.growth.handles)} | ${pct(soak.growth.lag)} | ${flat ? 'yes' : 'no'} |`,
      '',
      soak.final
        ? `At the end: RSS ${(soak.final.rss / 2 ** 20).toFixed(0)} MB, heap ${(soak.final.heap / 2 ** 20).toFixed(0)} MB, ` +
            `${soak.final.handles} handles, lag p99 ${Number.isFinite(soak.final.lag) ? `${(soak.final.lag * 1000).toFixed(1)} ms` : 'not sampled'}.`
        : '',
      '',
      '![soak chart](reliability/soak.svg)',
      '',
    );
  }
  writeFileSync(DOC, lines.join('\n'));
  // The repository's format check covers docs too: align the tables as prettier would.
  const prettier = join(ROOT, 'node_modules', '.bin', 'prettier');
  if (existsSync(prettier)) execFileSync(prettier, ['--write', DOC], { stdio: 'ignore' });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) writeReport();
