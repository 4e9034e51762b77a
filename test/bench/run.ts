/**
 * `npm run bench`: starts a private local control plane, runs every micro-benchmark in one
 * process, prints their tables and stops the control plane. Bounded: each scenario has a
 * fixed object count or duration. Run with --expose-gc so heap figures are measured after a
 * full collection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../lib/controlplane/index.js';
import { runInformerBench } from './informer.bench.js';
import { runLBIPAMBench } from './lbipam.bench.js';
import { runPeerBench } from './peer.bench.js';
import { runWorkqueueBench } from './workqueue.bench.js';

const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-bench-'));
console.log(`node ${process.version}; starting a local control plane in ${dir}`);
const cp = await ControlPlane.start({ dir });
try {
  await runWorkqueueBench();
  await runInformerBench({ kubeconfig: cp.kubeconfigPath });
  await runPeerBench({ kubeconfig: cp.kubeconfigPath });
  await runLBIPAMBench({ kubeconfig: cp.kubeconfigPath });
} finally {
  await cp.stop({ removeData: true });
  rmSync(dir, { recursive: true, force: true });
}
