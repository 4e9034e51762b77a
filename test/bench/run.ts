/**
 * `npm run bench [-- --quick]`: every workload of docs/benchmarks.md, then the report and its
 * charts (docs/benchmarks.md, docs/charts/*.svg) are written anew.
 *
 * - ts-kcm against kube-controller-manager v1.35.4 (controllers.bench.ts): ServiceCIDR at
 *   equal client limits (qps 20 / burst 30) and raised (1000 / 2000), idle RSS; each run on
 *   a fresh control plane, contenders alternating, medians with min–max.
 * - informer and work-queue micro-benchmarks on one shared control plane.
 *
 * Bounded: fixed object counts and run counts; --quick uses fewer of both. Run with
 * --expose-gc so heap figures are measured after a full collection.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane, projectRoot } from '../../lib/controlplane/index.js';
import {
  buildGoProgram,
  goWorkqueueRun,
  type GoWorkqueueResult,
  idleRun,
  rawWriteRun,
  serviceCIDRRun,
  type RawWriteRun,
  type Contender,
  type IdleRun,
  type Limits,
  type ServiceCIDRRun,
} from './controllers.bench.js';
import { runInformerBench, type InformerBenchResult } from './informer.bench.js';
import { runLBIPAMBench } from './lbipam.bench.js';
import { runPeerBench, type Sample } from './peer.bench.js';
import { runShardingBench } from './sharding.bench.js';
import { formatSummary, ratio, summarize, type Summary } from './stats.js';
import { renderBarChart, type BarGroup } from './svg.js';
import { runWorkqueueBench, type WorkqueueBenchResult } from './workqueue.bench.js';

const quick = process.argv.includes('--quick');
const plan = quick
  ? {
      n: 300,
      runsEqual: 1,
      runsRaised: 2,
      idleRuns: 1,
      idleSettleMs: 15_000,
      informerObjects: 3_000,
      peerObjects: 10_000,
    }
  : {
      n: 2_000,
      runsEqual: 3,
      runsRaised: 3,
      idleRuns: 3,
      idleSettleMs: 30_000,
      informerObjects: 20_000,
      peerObjects: 50_000,
    };
const EQUAL: Limits = { qps: 20, burst: 30 };
const RAISED: Limits = { qps: 1000, burst: 2000 };
const CONTENDERS: Contender[] = ['ts-kcm', 'kcm'];
const LABEL: Record<Contender, string> = { 'ts-kcm': 'ts-kcm', kcm: 'kube-controller-manager' };

const log = (s: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}`);

async function serviceCIDRSeries(limits: Limits, runs: number): Promise<ServiceCIDRRun[]> {
  const out: ServiceCIDRRun[] = [];
  for (let r = 0; r < runs; r++) {
    // Alternate who goes first, so neither always meets a warmer machine.
    const order = r % 2 ? [...CONTENDERS].reverse() : CONTENDERS;
    for (const who of order) {
      log(`ServiceCIDR N=${plan.n} qps ${limits.qps}/burst ${limits.burst}: ${who}, run ${r + 1}/${runs}`);
      const run = await serviceCIDRRun(who, plan.n, limits);
      log(
        `  ready ${run.readySeconds.toFixed(1)} s, gone ${run.goneSeconds.toFixed(1)} s, CPU ${run.cpuSeconds.toFixed(1)} s, peak RSS ${run.peakRssMB.toFixed(0)} MB`,
      );
      out.push(run);
    }
  }
  return out;
}

const pick = <T extends { contender: Contender }>(rows: T[], who: Contender, f: (r: T) => number): Summary =>
  summarize(rows.filter((r) => r.contender === who).map(f));

function serviceCIDRTable(rows: ServiceCIDRRun[]): string[] {
  const metrics: [string, (r: ServiceCIDRRun) => number, number][] = [
    ['create → Ready, s', (r) => r.readySeconds, 1],
    ['delete → gone, s (incl. 10 s grace)', (r) => r.goneSeconds, 1],
    ['CPU user+sys, s', (r) => r.cpuSeconds, 2],
    ['CPU ms per object', (r) => (r.cpuSeconds * 1000) / r.n, 1],
    ['peak RSS, MB', (r) => r.peakRssMB, 0],
  ];
  return [
    '| figure | ts-kcm | kube-controller-manager | ratio |',
    '| --- | ---: | ---: | ---: |',
    ...metrics.map(([name, f, d]) => {
      const a = pick(rows, 'ts-kcm', f);
      const b = pick(rows, 'kcm', f);
      return `| ${name} | ${formatSummary(a, d)} | ${formatSummary(b, d)} | ${ratio(a, b)} |`;
    }),
  ];
}

function groupsOf(
  series: { label: string; rows: { contender: Contender }[] }[],
  f: (r: never) => number,
): BarGroup[] {
  return series.map(({ label, rows }) => ({
    label,
    bars: CONTENDERS.map((who) => {
      const s = pick(rows as { contender: Contender }[], who, f as (r: { contender: Contender }) => number);
      return { series: LABEL[who], value: s.median, min: s.min, max: s.max };
    }),
  }));
}

function barsOf<T extends { contender: Contender }>(rows: T[], f: (r: T) => number) {
  return CONTENDERS.map((who) => {
    const s = pick(rows, who, f);
    return { series: LABEL[who], value: s.median, min: s.min, max: s.max };
  });
}

function workqueueTable(rows: WorkqueueBenchResult[]): string[] {
  return [
    '| scenario | keys/s | queue calls/s |',
    '| --- | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${Math.round(r.itemsPerSecond).toLocaleString('en-US')} | ${Math.round(r.opsPerSecond).toLocaleString('en-US')} |`,
    ),
  ];
}

function informerTable(rows: InformerBenchResult[]): string[] {
  return [
    '| scenario | objects | objects/s | heap B/object |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.objects.toLocaleString('en-US')} | ${Math.round(r.objectsPerSecond).toLocaleString('en-US')} | ${Number.isFinite(r.heapBytesPerObject) ? Math.round(r.heapBytesPerObject).toLocaleString('en-US') : 'n/a'} |`,
    ),
  ];
}

const started = new Date();
log(`node ${process.version}; ${quick ? 'quick' : 'full'} mode: ${JSON.stringify(plan)}`);

interface Results {
  equal: ServiceCIDRRun[];
  raised: ServiceCIDRRun[];
  idle: IdleRun[];
  raw: RawWriteRun[];
  wq: WorkqueueBenchResult[];
  goWq: GoWorkqueueResult[];
  informer: InformerBenchResult[];
  peer: Partial<Record<string, Sample>>;
  peerLines: string[];
  /** Full mode only: the sharding scale-out table (test/bench/sharding.bench.ts). */
  shardingLines?: string[];
  /** When the measuring run started (ISO 8601). */
  startedAt?: string;
}

async function measureAll(): Promise<Results> {
  // 1. ServiceCIDR and idle, one fresh control plane per run.
  const equal = await serviceCIDRSeries(EQUAL, plan.runsEqual);
  const raised = await serviceCIDRSeries(RAISED, plan.runsRaised);
  const idle: IdleRun[] = [];
  for (let r = 0; r < plan.idleRuns; r++)
    for (const who of CONTENDERS) {
      log(`idle, both controllers: ${who}, run ${r + 1}/${plan.idleRuns}`);
      idle.push(await idleRun(who, plan.idleSettleMs));
    }

  // The physical limit: the same writes by a bare Go loop, fresh control plane per run.
  const rawBinary = buildGoProgram('rawwrite');
  const raw: RawWriteRun[] = [];
  for (let r = 0; r < plan.runsRaised; r++) {
    log(`raw write rate (Go patch loop), N=${plan.n}, run ${r + 1}/${plan.runsRaised}`);
    raw.push(await rawWriteRun(rawBinary, plan.n));
    log(`  ${raw[raw.length - 1]!.writesPerSecond.toFixed(0)} writes/s`);
  }

  // 2. Micro-benchmarks on one shared control plane; their printed tables go into the report too.
  const printed: string[] = [];
  const capture = (line: string) => {
    printed.push(line);
    console.log(line);
  };
  const wq = await runWorkqueueBench({ print: capture });
  log('client-go workqueue (Go)');
  const goWq = goWorkqueueRun(buildGoProgram('workqueue'));
  const clientGoBinary = buildGoProgram('informer');
  const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-bench-'));
  let informer: InformerBenchResult[];
  let peer: Partial<Record<string, Sample>>;
  const peerLines: string[] = [];
  const shardingLines: string[] = [];
  const cp = await ControlPlane.start({ dir });
  try {
    informer = await runInformerBench({
      kubeconfig: cp.kubeconfigPath,
      objects: plan.informerObjects,
      print: capture,
    });
    peer = await runPeerBench({
      kubeconfig: cp.kubeconfigPath,
      clientGoBinary,
      objects: plan.peerObjects,
      print: (l) => {
        peerLines.push(l);
        console.log(l);
      },
    });
    await runLBIPAMBench({ kubeconfig: cp.kubeconfigPath });
    if (!quick)
      await runShardingBench({
        kubeconfig: cp.kubeconfigPath,
        print: (l) => {
          shardingLines.push(l);
          console.log(l);
        },
      });
  } finally {
    await cp.stop({ removeData: true });
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    equal,
    raised,
    idle,
    raw,
    wq,
    goWq,
    informer,
    peer,
    peerLines,
    shardingLines,
    startedAt: started.toISOString(),
  };
}

// `--render FILE` re-renders the report from a results file a run left behind, measuring nothing.
const renderFrom = process.argv.indexOf('--render');
const resultsFile = join(tmpdir(), 'ts-kcm-bench-results.json');
let results: Results;
if (renderFrom > 0) {
  results = JSON.parse(readFileSync(process.argv[renderFrom + 1]!, 'utf8')) as Results;
} else {
  results = await measureAll();
  writeFileSync(resultsFile, JSON.stringify(results));
  log(`raw results in ${resultsFile}`);
}
const { equal, raised, idle, raw, wq, goWq, informer, peer, peerLines } = results;
const shardingLines = results.shardingLines ?? [];
const startedAt = results.startedAt ?? started.toISOString();

// 3. Charts and report.
/** Our scenario beside client-go's of the same shape. */
const wqPairs = (
  [
    ['1 worker', 'add+get+done, 1 worker', '1 worker'],
    ['1 worker, metrics', 'add+get+done, 1 worker, metrics', '1 worker, metrics'],
    ['50 workers', 'contention: 4 producers, 50 workers, 1k keys', '4 producers, 50 workers, 1k keys'],
    [
      '50 workers, metrics',
      'contention: 4 producers, 50 workers, 1k keys, metrics',
      '4 producers, 50 workers, 1k keys, metrics',
    ],
  ] as const
).map(
  ([label, ours, go]) =>
    [label, wq.find((r) => r.scenario === ours), goWq.find((r) => r.scenario === go)] as const,
);
const root = projectRoot();
const charts = join(root, 'docs', 'charts');
mkdirSync(charts, { recursive: true });
const scSeries = [
  { label: `qps ${EQUAL.qps} / burst ${EQUAL.burst}`, rows: equal },
  { label: `qps ${RAISED.qps} / burst ${RAISED.burst}`, rows: raised },
];
const chartFiles: Record<string, string> = {
  'servicecidr-ready.svg': renderBarChart({
    title: `ServiceCIDR N=${plan.n}: create → Ready (lower is better)`,
    unit: 'seconds',
    groups: groupsOf(scSeries, (r: ServiceCIDRRun) => r.readySeconds),
  }),
  'servicecidr-delete.svg': renderBarChart({
    title: `ServiceCIDR N=${plan.n}: delete → gone, incl. 10 s grace`,
    unit: 'seconds',
    groups: groupsOf(scSeries, (r: ServiceCIDRRun) => r.goneSeconds),
  }),
  'servicecidr-cpu.svg': renderBarChart({
    title: `ServiceCIDR N=${plan.n}: controller CPU user+sys`,
    unit: 'CPU seconds',
    groups: groupsOf(scSeries, (r: ServiceCIDRRun) => r.cpuSeconds),
  }),
  'servicecidr-rss.svg': renderBarChart({
    title: `ServiceCIDR N=${plan.n}: controller peak RSS`,
    unit: 'MB',
    groups: groupsOf(scSeries, (r: ServiceCIDRRun) => r.peakRssMB),
  }),
  'idle-rss.svg': renderBarChart({
    title: 'Idle, both controllers, empty cluster',
    unit: 'MB',
    groups: [
      { label: 'RSS', bars: barsOf(idle, (r) => r.rssMB) },
      { label: 'peak RSS', bars: barsOf(idle, (r) => r.peakRssMB) },
    ],
  }),
  'informer.svg': renderBarChart({
    title: `Informer, ${plan.peerObjects.toLocaleString('en-US')} ConfigMaps: heap per cached object`,
    unit: 'bytes per object',
    groups: Object.entries(peer).map(([name, sample]) => ({
      label: name.replace(/ \(.*\)$/, '').slice(0, 34),
      bars: [
        {
          series: name.includes('ts-kcm') ? name.replace(/^ts-kcm informer /, 'ts-kcm ') : name,
          value: sample!.heapBytesPerObject,
        },
      ],
    })),
  }),
  'informer-sync.svg': renderBarChart({
    title: `Informer, ${plan.peerObjects.toLocaleString('en-US')} ConfigMaps: time to synced`,
    unit: 'seconds',
    groups: Object.entries(peer).map(([name, sample]) => ({
      label: name.replace(/ \(.*\)$/, '').slice(0, 34),
      bars: [{ series: name, value: sample!.seconds }],
    })),
  }),
  'workqueue.svg': renderBarChart({
    title: 'Work queue: add + get + done',
    unit: 'thousand keys per second',
    groups: wqPairs.map(([label, ours, go]) => ({
      label,
      bars: [
        { series: 'ts-kcm workqueue', value: (ours?.itemsPerSecond ?? NaN) / 1000 },
        { series: 'client-go workqueue', value: (go?.itemsPerSecond ?? NaN) / 1000 },
      ],
    })),
  }),
};
chartFiles['raw-write-rate.svg'] = renderBarChart({
  title: `ServiceCIDR N=${plan.n}, qps ${RAISED.qps}: write rate vs the raw limit`,
  unit: 'writes per second',
  groups: [
    {
      label: 'raw Go patch loop',
      bars: [
        {
          series: 'raw',
          ...(() => {
            const s = summarize(raw.map((r) => r.writesPerSecond));
            return { value: s.median, min: s.min, max: s.max };
          })(),
        },
      ],
    },
    { label: 'controller', bars: barsOf(raised, (r) => (2 * r.n) / r.readySeconds) },
  ],
});
for (const [f, svg] of Object.entries(chartFiles)) writeFileSync(join(charts, f), svg);

const ts = (who: Contender, rows: ServiceCIDRRun[], f: (r: ServiceCIDRRun) => number) => pick(rows, who, f);
const headline = (rows: ServiceCIDRRun[]) =>
  `ready ${ratio(
    ts('ts-kcm', rows, (r) => r.readySeconds),
    ts('kcm', rows, (r) => r.readySeconds),
  )}, ` +
  `CPU ${ratio(
    ts('ts-kcm', rows, (r) => r.cpuSeconds),
    ts('kcm', rows, (r) => r.cpuSeconds),
  )}, ` +
  `peak RSS ${ratio(
    ts('ts-kcm', rows, (r) => r.peakRssMB),
    ts('kcm', rows, (r) => r.peakRssMB),
  )}`;
const idleTs = pick(idle, 'ts-kcm', (r) => r.rssMB);
const rawRate = summarize(raw.map((r) => r.writesPerSecond));
const idleKcm = pick(idle, 'kcm', (r) => r.rssMB);

const md = [
  '# Benchmarks',
  '',
  `Generated by \`npm run bench${quick ? ' -- --quick' : ''}\` (test/bench/run.ts) on ${startedAt.slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}, kube-apiserver and kube-controller-manager v1.35.4 built by scripts/build-control-plane.sh. ${quick ? 'Quick mode: fewer objects and runs.' : 'Full mode.'} The machine has 2 cores; absolute figures move with its load, so compare the ratios, which come from the same run. Figures are medians, with the min–max of the runs in brackets.`,
  '',
  '## Summary',
  '',
  `- ServiceCIDR N=${plan.n}, qps ${EQUAL.qps}/burst ${EQUAL.burst}: ts-kcm / KCM ${headline(equal)}.`,
  `- ServiceCIDR N=${plan.n}, qps ${RAISED.qps}/burst ${RAISED.burst}: ts-kcm / KCM ${headline(raised)}.`,
  `- Idle, both controllers, empty cluster: RSS ${formatSummary(idleTs, 0)} MB vs ${formatSummary(idleKcm, 0)} MB, ${ratio(idleTs, idleKcm)}.`,
  '',
  '## How the controllers are compared',
  '',
  'Each run starts a fresh etcd + kube-apiserver, creates the objects, then starts one controller process: `ts-kcm run --controllers=service-cidr-controller` (built dist/) or upstream `kube-controller-manager --controllers=service-cidr-controller`, both with `--leader-elect=false` and the same `--kube-api-qps`/`--kube-api-burst`. The clock starts when the process is spawned (start-up counts). CPU is user + system time of that process from /proc/PID/stat and peak RSS its VmHWM, read when the workload is done. The load generator runs unthrottled in the bench process.',
  '',
  `## ServiceCIDR, N=${plan.n}, qps ${EQUAL.qps} / burst ${EQUAL.burst} (${plan.runsEqual} run${plan.runsEqual > 1 ? 's' : ''} each)`,
  '',
  ...serviceCIDRTable(equal),
  '',
  `## ServiceCIDR, N=${plan.n}, qps ${RAISED.qps} / burst ${RAISED.burst} (${plan.runsRaised} runs each)`,
  '',
  ...serviceCIDRTable(raised),
  '',
  '![ServiceCIDR create → Ready](charts/servicecidr-ready.svg)',
  '',
  '![ServiceCIDR delete → gone](charts/servicecidr-delete.svg)',
  '',
  '![ServiceCIDR CPU](charts/servicecidr-cpu.svg)',
  '',
  '![ServiceCIDR peak RSS](charts/servicecidr-rss.svg)',
  '',
  `## Idle, both controllers, empty cluster (${plan.idleRuns} run${plan.idleRuns > 1 ? 's' : ''} each, RSS after ${plan.idleSettleMs / 1000} s)`,
  '',
  '| figure | ts-kcm | kube-controller-manager | ratio |',
  '| --- | ---: | ---: | ---: |',
  `| RSS, MB | ${formatSummary(idleTs, 0)} | ${formatSummary(idleKcm, 0)} | ${ratio(idleTs, idleKcm)} |`,
  `| peak RSS, MB | ${formatSummary(
    pick(idle, 'ts-kcm', (r) => r.peakRssMB),
    0,
  )} | ${formatSummary(
    pick(idle, 'kcm', (r) => r.peakRssMB),
    0,
  )} | ${ratio(
    pick(idle, 'ts-kcm', (r) => r.peakRssMB),
    pick(idle, 'kcm', (r) => r.peakRssMB),
  )} |`,
  `| CPU user+sys, s | ${formatSummary(
    pick(idle, 'ts-kcm', (r) => r.cpuSeconds),
    2,
  )} | ${formatSummary(
    pick(idle, 'kcm', (r) => r.cpuSeconds),
    2,
  )} | ${ratio(
    pick(idle, 'ts-kcm', (r) => r.cpuSeconds),
    pick(idle, 'kcm', (r) => r.cpuSeconds),
  )} |`,
  '',
  '![Idle RSS](charts/idle-rss.svg)',
  '',
  `## Informer (${plan.informerObjects.toLocaleString('en-US')} ConfigMaps in memory; 2,000 from the apiserver)`,
  '',
  ...informerTable(informer),
  '',
  '![Informer heap per object](charts/informer.svg)',
  '',
  `### Against @kubernetes/client-node's informer and client-go's (${plan.peerObjects.toLocaleString('en-US')} ConfigMaps, same apiserver)`,
  '',
  'Each contender in a fresh process, alternating order; client-go is test/bench/go/informer (a SharedIndexInformer, heap = Go HeapAlloc after GC).',
  '',
  '![Informer time to synced](charts/informer-sync.svg)',
  '',
  '```',
  ...peerLines,
  '```',
  '',
  '## Work queue',
  '',
  "Beside client-go v0.35.4's typed rate-limiting queue (test/bench/go/workqueue, 1 s per scenario, a Prometheus metrics provider for the metrics rows; 4 producers over 1,000 keys for 50 workers):",
  '',
  '| scenario | ts-kcm keys/s | client-go keys/s | ratio |',
  '| --- | ---: | ---: | ---: |',
  ...wqPairs.map(
    ([label, ours, go]) =>
      `| ${label} | ${Math.round(ours?.itemsPerSecond ?? NaN).toLocaleString('en-US')} | ${Math.round(go?.itemsPerSecond ?? NaN).toLocaleString('en-US')} | ${ours && go ? (ours.itemsPerSecond / go.itemsPerSecond).toFixed(2) + '×' : 'n/a'} |`,
  ),
  '',
  'All ts-kcm scenarios:',
  '',
  ...workqueueTable(wq),
  '',
  '![Work queue throughput](charts/workqueue.svg)',
  '',
  '## Physical limit (raw write rate)',
  '',
  `The ServiceCIDR controller makes two writes per object before it is Ready (finalizer patch, status write). test/bench/go/rawwrite makes exactly those ${2 * plan.n} writes as JSON merge patches from 32 goroutines over HTTP/2 (standard library only: no informer, queue or throttle) against a fresh apiserver holding the same N=${plan.n} ServiceCIDRs. A controller's rate is 2N / (create → Ready time) at qps ${RAISED.qps} / burst ${RAISED.burst}, so it includes its start-up and cache sync.`,
  '',
  '| writer | writes/s | share of raw |',
  '| --- | ---: | ---: |',
  `| raw Go patch loop (${raw.length} runs) | ${formatSummary(rawRate, 0)} | 100 % |`,
  ...CONTENDERS.map((who) => {
    const rate = pick(raised, who, (r) => (2 * r.n) / r.readySeconds);
    return `| ${LABEL[who]} | ${formatSummary(rate, 0)} | ${rawRate.runs ? ((100 * rate.median) / rawRate.median).toFixed(0) : 'n/a'} % |`;
  }),
  '',
  '![Write rate against the raw limit](charts/raw-write-rate.svg)',
  '',
  ...(shardingLines.length
    ? [
        '## Sharding scale-out (full mode only)',
        '',
        'N ServiceCIDRs create → Ready with 1, 2 and 4 ts-kcm replicas on one `--sharding-ring` at the default client limits (test/bench/sharding.bench.ts, docs/sharding.md):',
        '',
        ...shardingLines.filter((l) => l.startsWith('|')),
        '',
      ]
    : []),
  '## Not measured yet',
  '',
  'The ResourceClaim workload (pods with claim templates, real kube-scheduler) and the informer event throughput for 10,000 updates (issue 13) are still to be written.',
  '',
].join('\n');
// Hand-written notes below the marker (findings, other controllers' figures) survive a rerun.
const MARKER = '<!-- Generated above by npm run bench; notes below this line are kept as they are. -->';
const reportPath = join(root, 'docs', 'benchmarks.md');
const previous = existsSync(reportPath) ? readFileSync(reportPath, 'utf8') : '';
const notes = previous.includes(MARKER) ? previous.slice(previous.indexOf(MARKER) + MARKER.length) : '\n';
// Formatted as `npm run format` would (prettier is a devDependency; skip it if absent).
const prettier = await import('prettier').catch(() => undefined);
const text = md + MARKER + notes;
const config = prettier ? await prettier.resolveConfig(reportPath) : null;
writeFileSync(reportPath, prettier ? await prettier.format(text, { ...config, parser: 'markdown' }) : text);
log('wrote docs/benchmarks.md and docs/charts/*.svg');
