/**
 * Where the apiserver address and credentials come from, in client-go's order of trust:
 * an explicit --kubeconfig, then $KUBECONFIG, then the pod's service account (in-cluster),
 * then ~/.kube/config. kubeconfig.ts parses the files (client-node only for auth-provider users).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig, type KubeConfigLike } from './kubeconfig.js';

export { KubeConfig };

/** Where the service account's token, CA and namespace are mounted in a pod. */
export const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';
/**
 * Names another directory holding the service account's `token` and `ca.crt`, used instead
 * of the pod mount: for tests and image smoke runs outside a pod (the file must exist).
 */
export const SERVICE_ACCOUNT_DIR_ENV = 'TS_KCM_SERVICE_ACCOUNT_DIR';

export type KubeConfigSource =
  | { kind: 'explicit'; paths: string[] }
  | { kind: 'env'; paths: string[] }
  | { kind: 'in-cluster'; host: string; port: string; tokenFile: string }
  | { kind: 'home'; paths: string[] };

export interface ConfigEnvironment {
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
  /** Prefix for the service account mount (tests point it at a temp dir). */
  serviceAccountRoot?: string;
}

export class KubeConfigNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigNotFoundError';
  }
}

/**
 * Which configuration loadKubeConfig would use, or undefined when there is none (the
 * manager may then bring up its embedded control plane). An explicit path is returned even
 * if the file is missing: loadKubeConfig reports that as an error rather than falling back.
 */
export function findKubeConfigSource(
  opts: { kubeconfig?: string } & ConfigEnvironment = {},
): KubeConfigSource | undefined {
  const env = opts.env ?? process.env;
  if (opts.kubeconfig) return { kind: 'explicit', paths: [opts.kubeconfig] };
  const fromEnv = (env.KUBECONFIG ?? '').split(path.delimiter).filter((p) => p !== '' && fs.existsSync(p));
  if (fromEnv.length) return { kind: 'env', paths: fromEnv };
  const saDir = env[SERVICE_ACCOUNT_DIR_ENV] || path.join(opts.serviceAccountRoot ?? '', serviceAccountDir);
  const tokenFile = path.join(saDir, 'token');
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && fs.existsSync(tokenFile)) {
    return {
      kind: 'in-cluster',
      host: env.KUBERNETES_SERVICE_HOST,
      port: env.KUBERNETES_SERVICE_PORT,
      tokenFile,
    };
  }
  const home = opts.homeDir ?? env.HOME ?? os.homedir();
  const homeConfig = path.join(home, '.kube', 'config');
  if (home && fs.existsSync(homeConfig)) return { kind: 'home', paths: [homeConfig] };
  return undefined;
}

/**
 * Load the configuration findKubeConfigSource picks. Throws KubeConfigNotFoundError when
 * there is none, and a plain Error when the file named is missing or has no usable context.
 */
export function loadKubeConfig(
  opts: { kubeconfig?: string; context?: string } & ConfigEnvironment = {},
): KubeConfig {
  const source = findKubeConfigSource(opts);
  if (!source) {
    throw new KubeConfigNotFoundError(
      'no kubeconfig: pass --kubeconfig, set KUBECONFIG, run in a pod with a service account, or create ~/.kube/config',
    );
  }
  return kubeConfigFrom(source, opts.context);
}

export function kubeConfigFrom(source: KubeConfigSource, context?: string): KubeConfig {
  const kc = new KubeConfig();
  if (source.kind === 'in-cluster') {
    // The in-cluster user is built on the token *file*; our auth layer re-reads it (rotation).
    const prefix = source.tokenFile.slice(
      0,
      source.tokenFile.length - path.join(serviceAccountDir, 'token').length,
    );
    withEnv({ KUBERNETES_SERVICE_HOST: source.host, KUBERNETES_SERVICE_PORT: source.port }, () =>
      kc.loadFromCluster(prefix),
    );
    if (!source.tokenFile.endsWith(path.join(serviceAccountDir, 'token'))) {
      // $TS_KCM_SERVICE_ACCOUNT_DIR: token and CA from that directory instead of the mount.
      const dir = path.dirname(source.tokenFile);
      const [cluster] = kc.getClusters();
      kc.loadFromClusterAndUser(
        { ...cluster!, caFile: path.join(dir, 'ca.crt') },
        {
          name: 'inClusterUser',
          authProvider: { name: 'tokenFile', config: { tokenFile: source.tokenFile } },
        },
      );
    }
  } else {
    const [first, ...rest] = source.paths;
    if (!fs.existsSync(first)) throw new Error(`kubeconfig ${first} does not exist`);
    loadFile(kc, first);
    // $KUBECONFIG lists merge; the first file to set a context wins, as with kubectl.
    for (const p of rest) {
      const more = new KubeConfig();
      loadFile(more, p);
      mergeInto(kc, more);
    }
  }
  if (context) kc.setCurrentContext(context);
  const where =
    source.kind === 'in-cluster' ? 'in-cluster config' : `kubeconfig ${source.paths.join(path.delimiter)}`;
  if (!kc.getCurrentContext()) throw new Error(`${where} has no current-context`);
  if (!kc.getCurrentCluster())
    throw new Error(`${where}: context ${kc.getCurrentContext()} names no known cluster`);
  return kc;
}

/** A token-file user (`token-file` or `tokenFile`) comes out as a tokenFile auth provider (kubeconfig.ts), re-read as it rotates. */
function loadFile(kc: KubeConfig, file: string): void {
  kc.loadFromFile(file);
}

function mergeInto(kc: KubeConfig, more: KubeConfig): void {
  const has = <T extends { name: string }>(list: T[], name: string) => list.some((x) => x.name === name);
  for (const c of more.getClusters()) if (!has(kc.getClusters(), c.name)) kc.addCluster(c);
  for (const u of more.getUsers()) if (!has(kc.getUsers(), u.name)) kc.addUser(u);
  for (const c of more.getContexts()) if (!has(kc.getContexts(), c.name)) kc.addContext(c);
  if (!kc.getCurrentContext() && more.getCurrentContext()) kc.setCurrentContext(more.getCurrentContext());
}

function withEnv(vars: Record<string, string>, fn: () => void): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** The token file of a service-account user (in-cluster), which rotates; undefined otherwise. */
export function tokenFileOf(kc: KubeConfigLike): string | undefined {
  const user = kc.getCurrentUser() as { authProvider?: { config?: Record<string, string> } } | null;
  return user?.authProvider?.config?.tokenFile;
}
