/**
 * `npm run bench [-- --quick]`: every workload of docs/benchmarks.md, then the report and its
 * charts (docs/benchmarks.md, docs/charts/*.svg) are written anew.
 *
 * - ts-kcm against kube-controller-manager v1.35.4 (controllers.bench.ts): ServiceCIDR at
 *   equal client limits (qps 20 / burst 30) and raised (1000 / 2000), idle RSS; each run on
 *   a fresh control plane, contenders alternating, medians with min–max.
 * - ResourceClaim (resourceclaim.bench.ts): N pods with claim templates, the real
 *   kube-scheduler allocating, at both limit settings, fresh control plane per run.
 * - informer and work-queue micro-benchmarks on one shared control plane, and the informer
 *   event throughput for 10,000 updates (events.bench.ts).
 *
 * `--only resourceclaim,informer-events,raw-write` (any of WORKLOADS) measures just those
 * workloads (raw-write: the Go loop and ts-kcm with 32 workers) and takes every other
 * section from a saved results file (`--base FILE`, default the last run's results file), so
 * the report keeps them.
 *
 * `--resume` continues a run that was cut short from its checkpoint file (see `section`).
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
import { runEventsBench, type EventsBenchResult } from './events.bench.js';
import { runInformerBench, type InformerBenchResult } from './informer.bench.js';
import { runLBIPAMBench } from './lbipam.bench.js';
import { runPeerBench, type Sample } from './peer.bench.js';
import { RC_WAIT_MS, resourceClaimRun, type ResourceClaimRun } from './resourceclaim.bench.js';
import { runShardingBench } from './sharding.bench.js';
import { formatSummary, ratio, summarize, type Summary } from './stats.js';
import { renderBarChart, type BarGroup } from './svg.js';
import { runWorkqueueBench, type WorkqueueBenchResult } from './workqueue.bench.js';
import { NODE_FLAGS } from '../../controllers/node-flags.js';

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
      rcN: 200,
      rcRunsEqual: 1,
      rcRunsRaised: 2,
      eventUpdates: 10_000,
    }
  : {
      n: 2_000,
      runsEqual: 3,
      runsRaised: 3,
      idleRuns: 3,
      idleSettleMs: 30_000,
      informerObjects: 20_000,
      peerObjects: 50_000,
      rcN: 1_000,
      rcRunsEqual: 3,
      rcRunsRaised: 3,
      eventUpdates: 10_000,
    };
const EQUAL: Limits = { qps: 20, burst: 30 };
const RAISED: Limits = { qps: 1000, burst: 2000 };
/** ts-kcm's workers for the raw-write comparison: as many as the raw loop's goroutines. */
const RAW_WORKERS = 32;
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

/**
 * The physical limit: the ServiceCIDR writes made by a bare Go loop, and by ts-kcm with as
 * many workers as the loop has goroutines, alternating, one fresh control plane per run.
 */
async function rawWriteSeries(runs: number): Promise<{ raw: RawWriteRun[]; rawTsKcm: ServiceCIDRRun[] }> {
  const rawBinary = buildGoProgram('rawwrite');
  const raw: RawWriteRun[] = [];
  const rawTsKcm: ServiceCIDRRun[] = [];
  for (let r = 0; r < runs; r++) {
    const order = r % 2 ? ['ts-kcm', 'raw'] : ['raw', 'ts-kcm'];
    for (const who of order) {
      if (who === 'raw') {
        log(`raw write rate (Go patch loop), N=${plan.n}, run ${r + 1}/${runs}`);
        raw.push(await rawWriteRun(rawBinary, plan.n));
        log(`  ${raw[raw.length - 1]!.writesPerSecond.toFixed(0)} writes/s`);
      } else {
        log(
          `ServiceCIDR N=${plan.n} qps ${RAISED.qps}: ts-kcm with ${RAW_WORKERS} workers, run ${r + 1}/${runs}`,
        );
        const run = await serviceCIDRRun('ts-kcm', plan.n, RAISED, RAW_WORKERS);
        log(`  ready ${run.readySeconds.toFixed(1)} s, first write ${run.firstWriteSeconds?.toFixed(1)} s`);
        rawTsKcm.push(run);
      }
    }
  }
  return { raw, rawTsKcm };
}

async function resourceClaimSeries(limits: Limits, runs: number): Promise<ResourceClaimRun[]> {
  const out: ResourceClaimRun[] = [];
  for (let r = 0; r < runs; r++) {
    const order = r % 2 ? [...CONTENDERS].reverse() : CONTENDERS;
    for (const who of order) {
      log(
        `ResourceClaim N=${plan.rcN} qps ${limits.qps}/burst ${limits.burst}: ${who}, run ${r + 1}/${runs}`,
      );
      const run = await resourceClaimRun(who, plan.rcN, limits);
      log(
        `  published ${run.publishedSeconds.toFixed(1)} s, scheduled ${run.scheduledSeconds.toFixed(1)} s, cleanup ${run.cleanupSeconds.toFixed(1)} s, CPU ${run.cpuSeconds.toFixed(1)} s, peak RSS ${run.peakRssMB.toFixed(0)} MB`,
      );
      out.push(run);
    }
  }
  return out;
}

const pick = <T extends { contender: Contender }>(rows: T[], who: Contender, f: (r: T) => number): Summary =>
  summarize(rows.filter((r) => r.contender === who).map(f));

/** A ts-kcm vs kube-controller-manager table: one row per figure, medians and their ratio. */
function comparisonTable<R extends { contender: Contender }>(
  rows: R[],
  metrics: [string, (r: R) => number, number][],
): string[] {
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

function serviceCIDRTable(rows: ServiceCIDRRun[]): string[] {
  return comparisonTable(rows, [
    ['create → Ready, s', (r) => r.readySeconds, 1],
    ['delete → gone, s (incl. 10 s grace)', (r) => r.goneSeconds, 1],
    ['CPU user+sys, s', (r) => r.cpuSeconds, 2],
    ['CPU ms per object', (r) => (r.cpuSeconds * 1000) / r.n, 1],
    ['peak RSS, MB', (r) => r.peakRssMB, 0],
  ]);
}

function resourceClaimTable(rows: ResourceClaimRun[]): string[] {
  return comparisonTable(rows, [
    ['start → first claim created (start-up, cache sync), s', (r) => r.firstClaimSeconds ?? NaN, 2],
    ['start → every claim exists and pod status published, s', (r) => r.publishedSeconds, 1],
    ['start → every pod bound by the scheduler, s', (r) => r.scheduledSeconds, 1],
    ['pods Succeeded → every claim deleted, s', (r) => r.cleanupSeconds, 1],
    ['CPU user+sys, s', (r) => r.cpuSeconds, 2],
    ['CPU ms per pod', (r) => (r.cpuSeconds * 1000) / r.n, 1],
    ['peak RSS, MB', (r) => r.peakRssMB, 0],
  ]);
}

function eventsTable(rows: EventsBenchResult[]): string[] {
  const peer = rows.find((r) => r.scenario.startsWith('@kubernetes/client-node'));
  return [
    '| scenario | seconds | updates/s caught up | handler calls | write rate, writes/s | ratio to client-node |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.seconds.toFixed(2)} | ${Math.round(r.eventsPerSecond).toLocaleString('en-US')} | ${(r.delivered ?? NaN).toLocaleString('en-US')} | ${r.writesPerSecond ? Math.round(r.writesPerSecond).toLocaleString('en-US') : '—'} | ${peer && r.writesPerSecond ? (r.eventsPerSecond / peer.eventsPerSecond).toFixed(2) + '×' : '—'} |`,
    ),
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
  /** ts-kcm at RAISED limits with RAW_WORKERS workers, measured beside the raw loop. */
  rawTsKcm?: ServiceCIDRRun[];
  wq: WorkqueueBenchResult[];
  goWq: GoWorkqueueResult[];
  informer: InformerBenchResult[];
  peer: Partial<Record<string, Sample>>;
  peerLines: string[];
  /** Full mode only: the sharding scale-out table (test/bench/sharding.bench.ts). */
  shardingLines?: string[];
  /** When the measuring run started (ISO 8601). */
  startedAt?: string;
  rcEqual?: ResourceClaimRun[];
  rcRaised?: ResourceClaimRun[];
  events?: EventsBenchResult[];
  /** With --only: the workloads this run measured; the rest came from the base file. */
  only?: string[];
  /** With --only: when the run the other sections come from started. */
  baseStartedAt?: string;
}

const WORKLOADS = ['resourceclaim', 'informer-events', 'raw-write'] as const;
type Workload = (typeof WORKLOADS)[number];

/** `--only a,b`: measure just these workloads (see WORKLOADS). */
async function measureOnly(only: Workload[]): Promise<Partial<Results>> {
  const out: Partial<Results> = {};
  if (only.includes('resourceclaim')) {
    out.rcEqual = await resourceClaimSeries(EQUAL, plan.rcRunsEqual);
    out.rcRaised = await resourceClaimSeries(RAISED, plan.rcRunsRaised);
  }
  if (only.includes('raw-write')) Object.assign(out, await rawWriteSeries(plan.runsRaised));
  if (only.includes('informer-events')) {
    const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-bench-'));
    const cp = await ControlPlane.start({ dir });
    try {
      out.events = await runEventsBench({
        kubeconfig: cp.kubeconfigPath,
        updates: plan.eventUpdates,
        clientGoBinary: buildGoProgram('informer'),
      });
    } finally {
      await cp.stop({ removeData: true });
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

/**
 * A full run takes about two hours, so each finished section is saved at once to a
 * checkpoint file; `--resume` takes the sections that file already holds (same mode, same
 * plan) and measures only the rest, so a run cut short loses one section, not all of them.
 */
const checkpointFile = join(tmpdir(), `ts-kcm-bench-checkpoint-${quick ? 'quick' : 'full'}.json`);
interface Checkpoint {
  plan: string;
  startedAt: string;
  sections: Record<string, unknown>;
}
function openCheckpoint(): Checkpoint {
  const fresh: Checkpoint = { plan: JSON.stringify(plan), startedAt: started.toISOString(), sections: {} };
  if (!process.argv.includes('--resume') || !existsSync(checkpointFile)) return fresh;
  const saved = JSON.parse(readFileSync(checkpointFile, 'utf8')) as Checkpoint;
  if (saved.plan !== fresh.plan) {
    log(`--resume: ${checkpointFile} was written with another plan; starting afresh`);
    return fresh;
  }
  log(`--resume: taking ${Object.keys(saved.sections).join(', ') || 'nothing'} from ${checkpointFile}`);
  return saved;
}
const checkpoint = openCheckpoint();
async function section<T>(name: string, measure: () => Promise<T>): Promise<T> {
  if (name in checkpoint.sections) {
    log(`${name}: from the checkpoint`);
    return checkpoint.sections[name] as T;
  }
  const value = await measure();
  checkpoint.sections[name] = value;
  writeFileSync(checkpointFile, JSON.stringify(checkpoint));
  return value;
}

async function measureAll(): Promise<Results> {
  // 1. ServiceCIDR and idle, one fresh control plane per run.
  const equal = await section('servicecidr-equal', () => serviceCIDRSeries(EQUAL, plan.runsEqual));
  const raised = await section('servicecidr-raised', () => serviceCIDRSeries(RAISED, plan.runsRaised));
  const rcEqual = await section('resourceclaim-equal', () => resourceClaimSeries(EQUAL, plan.rcRunsEqual));
  const rcRaised = await section('resourceclaim-raised', () =>
    resourceClaimSeries(RAISED, plan.rcRunsRaised),
  );
  const idle = await section('idle', async () => {
    const out: IdleRun[] = [];
    for (let r = 0; r < plan.idleRuns; r++)
      for (const who of CONTENDERS) {
        log(`idle, both controllers: ${who}, run ${r + 1}/${plan.idleRuns}`);
        out.push(await idleRun(who, plan.idleSettleMs));
      }
    return out;
  });

  // The physical limit: the same writes by a bare Go loop, fresh control plane per run.
  const { raw, rawTsKcm } = await section('raw-write', () => rawWriteSeries(plan.runsRaised));

  // 2. Micro-benchmarks on one shared control plane; their printed tables go into the report too.
  const printed: string[] = [];
  const capture = (line: string) => {
    printed.push(line);
    console.log(line);
  };
  const wq = await section('workqueue', () => runWorkqueueBench({ print: capture }));
  const goWq = await section('workqueue-go', () => {
    log('client-go workqueue (Go)');
    return Promise.resolve(goWorkqueueRun(buildGoProgram('workqueue')));
  });
  const clientGoBinary = buildGoProgram('informer');
  const shared = ['informer', 'events', 'peer', 'lb-ipam', ...(quick ? [] : ['sharding'])];
  let informer: InformerBenchResult[];
  let events: EventsBenchResult[];
  let peer: Partial<Record<string, Sample>>;
  let peerLines: string[];
  let shardingLines: string[] = [];
  const printer = (lines: string[]) => (l: string) => {
    lines.push(l);
    console.log(l);
  };
  // Each of these makes its objects in a namespace of its own, so a resumed run can measure
  // the rest on a new control plane.
  const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-bench-'));
  const cp = shared.every((s) => s in checkpoint.sections) ? undefined : await ControlPlane.start({ dir });
  const kubeconfig = cp?.kubeconfigPath ?? '';
  try {
    informer = await section('informer', () =>
      runInformerBench({ kubeconfig, objects: plan.informerObjects, print: capture }),
    );
    events = await section('events', () =>
      runEventsBench({ kubeconfig, updates: plan.eventUpdates, clientGoBinary, print: capture }),
    );
    ({ peer, peerLines } = await section('peer', async () => {
      const lines: string[] = [];
      const samples = await runPeerBench({
        kubeconfig,
        clientGoBinary,
        objects: plan.peerObjects,
        print: printer(lines),
      });
      return { peer: samples, peerLines: lines };
    }));
    await section('lb-ipam', async () => {
      await runLBIPAMBench({ kubeconfig });
      return true;
    });
    if (!quick)
      shardingLines = await section('sharding', async () => {
        const lines: string[] = [];
        await runShardingBench({ kubeconfig, print: printer(lines) });
        return lines;
      });
  } finally {
    await cp?.stop({ removeData: true });
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    equal,
    raised,
    idle,
    raw,
    rawTsKcm,
    wq,
    goWq,
    informer,
    peer,
    peerLines,
    shardingLines,
    startedAt: checkpoint.startedAt,
    rcEqual,
    rcRaised,
    events,
  };
}

// `--render FILE` re-renders the report from a results file a run left behind, measuring nothing.
const renderFrom = process.argv.indexOf('--render');
const resultsFile = join(tmpdir(), 'ts-kcm-bench-results.json');
let results: Results;
const onlyAt = process.argv.indexOf('--only');
if (renderFrom > 0) {
  results = JSON.parse(readFileSync(process.argv[renderFrom + 1]!, 'utf8')) as Results;
} else if (onlyAt > 0) {
  const only = (process.argv[onlyAt + 1] ?? '').split(',').filter(Boolean);
  const unknown = only.filter((w) => !(WORKLOADS as readonly string[]).includes(w));
  if (!only.length || unknown.length)
    throw new Error(`--only takes a comma-separated list of ${WORKLOADS.join(', ')}; got ${only.join(',')}`);
  const baseAt = process.argv.indexOf('--base');
  const baseFile = baseAt > 0 ? process.argv[baseAt + 1]! : resultsFile;
  const base = JSON.parse(readFileSync(baseFile, 'utf8')) as Results;
  log(`--only ${only.join(',')}: every other section from ${baseFile}`);
  results = {
    ...base,
    ...(await measureOnly(only as Workload[])),
    only,
    baseStartedAt: base.baseStartedAt ?? base.startedAt,
    startedAt: started.toISOString(),
  };
  writeFileSync(resultsFile, JSON.stringify(results));
  log(`raw results in ${resultsFile}`);
} else {
  results = await measureAll();
  writeFileSync(resultsFile, JSON.stringify(results));
  log(`raw results in ${resultsFile}`);
}
const { equal, raised, idle, raw, wq, goWq, informer, peer, peerLines } = results;
const shardingLines = results.shardingLines ?? [];
const rcEqual = results.rcEqual ?? [];
const rcRaised = results.rcRaised ?? [];
const events = results.events ?? [];
const rawTsKcm = results.rawTsKcm ?? [];
const rcN = rcEqual[0]?.n ?? rcRaised[0]?.n ?? plan.rcN;
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
    { label: 'controller, 5 workers', bars: barsOf(raised, (r) => (2 * r.n) / r.readySeconds) },
    ...(rawTsKcm.length
      ? [
          {
            label: `ts-kcm, ${RAW_WORKERS} workers`,
            bars: [
              {
                series: LABEL['ts-kcm'],
                ...(() => {
                  const s = summarize(rawTsKcm.map((r) => (2 * r.n) / r.readySeconds));
                  return { value: s.median, min: s.min, max: s.max };
                })(),
              },
            ],
          },
        ]
      : []),
  ],
});
const rcSeries = [
  { label: `qps ${EQUAL.qps} / burst ${EQUAL.burst}`, rows: rcEqual },
  { label: `qps ${RAISED.qps} / burst ${RAISED.burst}`, rows: rcRaised },
];
if (rcEqual.length || rcRaised.length) {
  chartFiles['resourceclaim-published.svg'] = renderBarChart({
    title: `ResourceClaim N=${rcN} pods: start → claims and pod statuses published`,
    unit: 'seconds',
    groups: groupsOf(rcSeries, (r: ResourceClaimRun) => r.publishedSeconds),
  });
  chartFiles['resourceclaim-cleanup.svg'] = renderBarChart({
    title: `ResourceClaim N=${rcN} pods: Succeeded → every claim deleted`,
    unit: 'seconds',
    groups: groupsOf(rcSeries, (r: ResourceClaimRun) => r.cleanupSeconds),
  });
  chartFiles['resourceclaim-cpu-rss.svg'] = renderBarChart({
    title: `ResourceClaim N=${rcN} pods: controller CPU and peak RSS, qps ${RAISED.qps}`,
    unit: 'CPU seconds / 100 MB',
    groups: [
      { label: 'CPU user+sys, s', bars: barsOf(rcRaised, (r) => r.cpuSeconds) },
      { label: 'peak RSS, 100 MB', bars: barsOf(rcRaised, (r) => r.peakRssMB / 100) },
    ],
  });
}
if (events.length)
  chartFiles['informer-events.svg'] = renderBarChart({
    title: `Informer: ${(events[0]?.updates ?? 0).toLocaleString('en-US')} updates delivered to a handler`,
    unit: 'events per second',
    groups: events.map((r) => ({
      label: r.scenario.replace(/^@kubernetes\//, '').slice(0, 34),
      bars: [{ series: r.scenario, value: r.eventsPerSecond }],
    })),
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
const rcHeadline = (rows: ResourceClaimRun[]) =>
  (
    [
      ['published', (r: ResourceClaimRun) => r.publishedSeconds],
      ['cleanup', (r: ResourceClaimRun) => r.cleanupSeconds],
      ['CPU', (r: ResourceClaimRun) => r.cpuSeconds],
      ['peak RSS', (r: ResourceClaimRun) => r.peakRssMB],
    ] as const
  )
    .map(([name, f]) => `${name} ${ratio(pick(rows, 'ts-kcm', f), pick(rows, 'kcm', f))}`)
    .join(', ');
const evOurs = events.find((r) => r.scenario === 'ts-kcm informer, apiserver watch');
const evPeer = events.find((r) => r.scenario.startsWith('@kubernetes/client-node'));
const evGo = events.find((r) => r.scenario.startsWith('client-go'));
const onlyNote = results.only
  ? ` This report was regenerated with \`--only ${results.only.join(',')}\`: those sections were measured on ${startedAt.slice(0, 16).replace('T', ' ')} UTC, every other section comes from the saved results of ${results.baseStartedAt ? `the run of ${results.baseStartedAt.slice(0, 16).replace('T', ' ')} UTC` : 'an earlier run'}.`
  : '';

const md = [
  '# Benchmarks',
  '',
  `Generated by \`npm run bench${quick ? ' -- --quick' : ''}\` (test/bench/run.ts) on ${startedAt.slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}, kube-apiserver and kube-controller-manager v1.35.4 built by scripts/build-control-plane.sh. ts-kcm runs as its image does: \`node ${NODE_FLAGS.join(' ')}\` (controllers/node-flags.ts). ${quick ? 'Quick mode: fewer objects and runs.' : 'Full mode.'} The machine has 2 cores; absolute figures move with its load, so compare the ratios, which come from the same run. Figures are medians, with the min–max of the runs in brackets.${onlyNote}`,
  '',
  '## Summary',
  '',
  `- ServiceCIDR N=${plan.n}, qps ${EQUAL.qps}/burst ${EQUAL.burst}: ts-kcm / KCM ${headline(equal)}.`,
  `- ServiceCIDR N=${plan.n}, qps ${RAISED.qps}/burst ${RAISED.burst}: ts-kcm / KCM ${headline(raised)}.`,
  ...(rcEqual.length
    ? [
        `- ResourceClaim N=${rcN} pods, qps ${EQUAL.qps}/burst ${EQUAL.burst}: ts-kcm / KCM ${rcHeadline(rcEqual)}.`,
      ]
    : []),
  ...(rcRaised.length
    ? [
        `- ResourceClaim N=${rcN} pods, qps ${RAISED.qps}/burst ${RAISED.burst}: ts-kcm / KCM ${rcHeadline(rcRaised)}.`,
      ]
    : []),
  ...(evOurs && evPeer
    ? [
        `- Informer, ${evOurs.updates.toLocaleString('en-US')} updates over the apiserver: ts-kcm ${Math.round(evOurs.eventsPerSecond)} events/s vs client-node ${Math.round(evPeer.eventsPerSecond)} events/s, ${(evOurs.eventsPerSecond / evPeer.eventsPerSecond).toFixed(2)}×${evGo ? `; client-go ${Math.round(evGo.eventsPerSecond)} events/s, ts-kcm / client-go ${(evOurs.eventsPerSecond / evGo.eventsPerSecond).toFixed(2)}×` : ''}.`,
      ]
    : []),
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
  ...(rcEqual.length || rcRaised.length
    ? [
        `## ResourceClaim, N=${rcN} pods with claim templates, real kube-scheduler`,
        '',
        `test/bench/resourceclaim.bench.ts: on a fresh control plane with kube-scheduler, ${Math.ceil(rcN / 100)} Nodes that look Ready (status written by the bench), a ResourceSlice of 100 devices on each, a DeviceClass, one ResourceClaimTemplate and N pods using it are created before the controller starts (\`ts-kcm run --controllers=resourceclaim-controller\` or \`kube-controller-manager --controllers=resource-claim-controller\`). Timed from the spawn: every generated claim exists and every pod's \`status.resourceClaimStatuses\` is published; then every pod bound (the scheduler allocates and reserves the claims, so this is scheduler-bound). The bench then plays the kubelet and marks all pods Succeeded: time until every generated claim is deleted. CPU and peak RSS cover the controller process from spawn to the end of the cleanup, so a contender whose cleanup takes longer also spends longer idling in those figures. Each wait is bounded at ${RC_WAIT_MS / 1000} s; a figure not reached by then shows as n/a (the notes below say why, where it happened).`,
        '',
        `### qps ${EQUAL.qps} / burst ${EQUAL.burst} (${plan.rcRunsEqual} run${plan.rcRunsEqual > 1 ? 's' : ''} each)`,
        '',
        ...resourceClaimTable(rcEqual),
        '',
        `### qps ${RAISED.qps} / burst ${RAISED.burst} (${plan.rcRunsRaised} run${plan.rcRunsRaised > 1 ? 's' : ''} each)`,
        '',
        ...resourceClaimTable(rcRaised),
        '',
        '![ResourceClaim published](charts/resourceclaim-published.svg)',
        '',
        '![ResourceClaim cleanup](charts/resourceclaim-cleanup.svg)',
        '',
        '![ResourceClaim CPU and peak RSS](charts/resourceclaim-cpu-rss.svg)',
        '',
      ]
    : []),
  `## Idle, both controllers, empty cluster (${plan.idleRuns} run${plan.idleRuns > 1 ? 's' : ''} each, RSS after ${plan.idleSettleMs / 1000} s)`,
  '',
  "The same two controllers on both sides: `ts-kcm run --controllers=service-cidr-controller,resourceclaim-controller` and `kube-controller-manager --controllers=service-cidr-controller,resource-claim-controller`, each at qps 20 / burst 30 against an empty fresh control plane. RSS is read once the settle time has passed; ts-kcm's manager runs one memory-reducing full collection after start-up, at the end of the first 5 s with the event loop under 5 % busy (lib/manager/settle.ts), so its peak RSS is what start-up reached before that.",
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
  ...(events.length
    ? [
        `### Event throughput, ${(events[0]?.updates ?? 0).toLocaleString('en-US')} updates`,
        '',
        "test/bench/events.bench.ts: 100 ConfigMaps, the informer synced, then the updates written as merge patches by 32 unthrottled writers; timed from the first write until the handler has seen the last version of every object. Handler calls counts the updates (and adds) it received: ts-kcm's fan-out hands a handler that falls behind the latest object instead of every intermediate version, so it may make fewer calls than there were updates; client-node calls it once per watch event, client-go's SharedIndexInformer (test/bench/go/informer -events) once per add and update, buffering what its handler has not taken yet. Each apiserver contender runs in a process of its own, so none shares an event loop with the writers in the bench process, and is told the last versions on stdin once the writes are done. The apiserver rows cannot exceed the writers' rate, printed beside them (each contender is timed over writes of its own); the in-memory row feeds our informer a watch that yields the updates as fast as it takes them (its pipeline's ceiling).",
        '',
        ...eventsTable(events),
        '',
        '![Informer event throughput](charts/informer-events.svg)',
        '',
      ]
    : []),
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
  `The ServiceCIDR controller makes two writes per object before it is Ready (finalizer patch, status write). test/bench/go/rawwrite makes exactly those ${2 * plan.n} writes as JSON merge patches from ${RAW_WORKERS} goroutines over HTTP/2 (standard library only: no informer, queue or throttle) against a fresh apiserver holding the same N=${plan.n} ServiceCIDRs. A controller's rate is 2N / (create → Ready time) at qps ${RAISED.qps} / burst ${RAISED.burst}, so it includes its start-up and cache sync; start → first write is that part (the first update a watch opened before the spawn sees), and the rate after it leaves it out. The 5-worker rows are the runs of the ServiceCIDR qps ${RAISED.qps} table (KCM hard-codes 5 workers for this controller); the ${RAW_WORKERS}-worker row is ts-kcm with \`--concurrent-service-cidr-syncs=${RAW_WORKERS}\`, run alternately with the raw loop.`,
  '',
  '| writer | workers | start → first write, s | writes/s | share of raw | writes/s after the first write | share of raw |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  `| raw Go patch loop (${raw.length} runs) | ${RAW_WORKERS} | — | ${formatSummary(rawRate, 0)} | 100 % | — | — |`,
  ...[
    ...CONTENDERS.map((who) => [LABEL[who], 5, raised.filter((r) => r.contender === who)] as const),
    ...(rawTsKcm.length
      ? [[`${LABEL['ts-kcm']} (${rawTsKcm.length} runs)`, RAW_WORKERS, rawTsKcm] as const]
      : []),
  ].map(([label, workers, rows]) => {
    const share = (s: Summary) =>
      rawRate.runs && s.runs ? `${((100 * s.median) / rawRate.median).toFixed(0)} %` : '—';
    const first = summarize(rows.map((r) => r.firstWriteSeconds ?? NaN));
    const rate = summarize(rows.map((r) => (2 * r.n) / r.readySeconds));
    const after = summarize(rows.map((r) => (2 * r.n) / (r.readySeconds - (r.firstWriteSeconds ?? NaN))));
    return `| ${label} | ${workers} | ${first.runs ? formatSummary(first, 2) : '—'} | ${formatSummary(rate, 0)} | ${share(rate)} | ${after.runs ? formatSummary(after, 0) : '—'} | ${share(after)} |`;
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
  ...(rcEqual.length && events.length
    ? []
    : [
        '## Not measured yet',
        '',
        'This results file has no ResourceClaim or informer-events figures; rerun with `--only resourceclaim,informer-events`.',
        '',
      ]),
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
