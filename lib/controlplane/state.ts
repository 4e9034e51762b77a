/** What a running control plane leaves in DIR/state.json so another process can find it. */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type ComponentName = 'etcd' | 'kube-apiserver' | 'kube-scheduler' | 'kube-controller-manager';

/** Start order; they stop in reverse. */
export const COMPONENT_ORDER: readonly ComponentName[] = [
  'etcd',
  'kube-apiserver',
  'kube-scheduler',
  'kube-controller-manager',
];

export interface ComponentState {
  binary: string;
  /** Kept so a component restarts with the same ports and files. */
  args: string[];
  pid: number | null;
  logFile: string;
}

export interface StartupFigures {
  /** Whole start attempts; more than one means a port race forced a retry. */
  attempts: number;
  /** From spawning etcd to kube-apiserver answering /readyz, last attempt only. */
  readyMs: number;
}

export interface ControlPlaneState {
  dir: string;
  binDir: string;
  etcdClientURL: string;
  apiserverURL: string;
  kubeconfigPath: string;
  /** The same admin, authenticated by a client certificate instead of the token (as kind does). */
  certKubeconfigPath: string;
  token: string;
  certDir: string;
  components: Partial<Record<ComponentName, ComponentState>>;
  startup: StartupFigures;
}

export const STATE_FILE = 'state.json';

export function readState(dir: string): ControlPlaneState {
  const path = join(dir, STATE_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`ts-kcm: no control plane in ${dir} (${path} not found)`);
  }
  return JSON.parse(text) as ControlPlaneState;
}

/** Written atomically: `status` in another process must never read half a file. */
export function writeState(state: ControlPlaneState): void {
  const path = join(state.dir, STATE_FILE);
  writeFileSync(`${path}.tmp`, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}
