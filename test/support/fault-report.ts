/**
 * The JSON report a fault-suite file writes for test/faults/report.ts (docs/reliability.md).
 * `npm run faults` sets TS_KCM_FAULTS_FULL=1 (more churn, longer storms) and
 * TS_KCM_FAULTS_REPORT_DIR; each suite file then writes `<dir>/<suite>.json` when its
 * scenarios are done. With TS_KCM_FAULTS_MERGE=1 (a run of some scenarios only, e.g.
 * `-t 'leader churn'`) the scenarios of the earlier report that did not run again are kept.
 */
import { afterAll } from '@jest/globals';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScenarioResult } from '../faults/report.js';

export type { ScenarioResult };

export const FULL = process.env.TS_KCM_FAULTS_FULL === '1';

/** Churn sizes: the full suite runs five times the short one's. */
export const scale = (n: number): number => (FULL ? n * 5 : n);

/**
 * Collects a suite file's scenario results and writes them after its last test. `suite` names
 * the file it writes: `faults` → faults.json.
 */
export function faultReport(suite: string): { record(r: ScenarioResult): void; last(): ScenarioResult } {
  const results: ScenarioResult[] = [];
  afterAll(() => {
    const dir = process.env.TS_KCM_FAULTS_REPORT_DIR;
    if (!dir || results.length === 0) return;
    const file = join(dir, `${suite}.json`);
    let scenarios = results;
    if (process.env.TS_KCM_FAULTS_MERGE === '1' && existsSync(file)) {
      const earlier = (JSON.parse(readFileSync(file, 'utf8')) as { scenarios: ScenarioResult[] }).scenarios;
      const rerun = new Set(results.map((r) => r.scenario));
      scenarios = [...earlier.filter((r) => !rerun.has(r.scenario)), ...results];
    }
    writeFileSync(
      file,
      `${JSON.stringify({ full: FULL, at: new Date().toISOString(), scenarios }, null, 2)}\n`,
    );
  });
  return {
    record: (r) => void results.push(r),
    last: () => {
      const r = results.at(-1);
      if (!r) throw new Error('faultReport.last(): no scenario recorded yet');
      return r;
    },
  };
}
