/**
 * A kubeconfig in memory: clusters, users, contexts and the current context, parsed from the
 * YAML ourselves, and the TLS material and headers a request needs (applyToHTTPSOptions).
 *
 * Why not @kubernetes/client-node's KubeConfig for everything: importing it (even its
 * dist/config.js alone) loads the whole generated API and its HTTP stack, 44 → 124 MB RSS
 * before a single object is cached. The common users — client certificates, a bearer token,
 * a token file, basic auth, and exec plugins (exec.ts runs those) — need none of it. Only
 * an `auth-provider` user (oidc, azure, gcp) is handed to client-node, imported on first use,
 * so it stays the authority for those plugins. The field names are client-node's, so one of
 * its KubeConfig objects can stand in wherever a KubeConfigLike is asked for.
 */
import fs from 'node:fs';
import type https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { load as loadYaml } from 'js-yaml';

export interface Cluster {
  name: string;
  server: string;
  caData?: string;
  caFile?: string;
  skipTLSVerify?: boolean;
  tlsServerName?: string;
  proxyUrl?: string;
}

export interface AuthProviderConfig {
  name: string;
  config: Record<string, string>;
}

export interface User {
  name: string;
  token?: string;
  username?: string;
  password?: string;
  certData?: string;
  certFile?: string;
  keyData?: string;
  keyFile?: string;
  authProvider?: AuthProviderConfig;
  exec?: unknown;
  impersonateUser?: string;
}

export interface Context {
  name: string;
  cluster: string;
  user: string;
  namespace?: string;
}

/** What the client needs from a kubeconfig: ours, or a client-node KubeConfig. */
export interface KubeConfigLike {
  getCurrentContext(): string;
  getCurrentCluster(): Cluster | null;
  getCurrentUser(): User | null;
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

/** In-cluster paths below the service account mount, as client-go and client-node use them. */
const saPrefix = '/var/run/secrets/kubernetes.io/serviceaccount';

type Raw = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export class KubeConfig implements KubeConfigLike {
  private clusters: Cluster[] = [];
  private users: User[] = [];
  private contexts: Context[] = [];
  private currentContext = '';
  /** client-node's KubeConfig for an auth-provider user, built on first request. */
  private delegate?: Promise<{ applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> }>;

  /** Parse a kubeconfig file; relative file paths in it are relative to its folder, as kubectl resolves them. */
  loadFromFile(file: string): void {
    this.loadFromString(fs.readFileSync(file, 'utf8'), path.dirname(path.resolve(file)));
  }

  loadFromString(text: string, baseDir?: string): void {
    const doc = (loadYaml(text) ?? {}) as Raw;
    if (typeof doc !== 'object') throw new Error('kubeconfig is not a YAML mapping');
    const abs = (p: string | undefined) => (p && baseDir ? path.resolve(baseDir, p) : p);
    this.clusters = list(doc.clusters).map((e) => {
      const c = (e.cluster ?? {}) as Raw;
      const name = str(e.name);
      const server = str(c.server);
      if (!name) throw new Error('kubeconfig: a cluster has no name');
      if (!server) throw new Error(`kubeconfig: cluster ${name} has no server`);
      return clean({
        name,
        server: server.replace(/\/$/, ''),
        caData: str(c['certificate-authority-data']),
        caFile: abs(str(c['certificate-authority'])),
        skipTLSVerify: c['insecure-skip-tls-verify'] === true,
        tlsServerName: str(c['tls-server-name']),
        proxyUrl: str(c['proxy-url']),
      });
    });
    this.users = list(doc.users).map((e) => {
      const u = (e.user ?? {}) as Raw;
      const name = str(e.name);
      if (!name) throw new Error('kubeconfig: a user has no name');
      const provider = u['auth-provider'] as Raw | undefined;
      // token-file (kubectl's spelling) and tokenFile (client-go's field) become a token-file
      // user the connection re-reads as the token rotates (client-node reads it once).
      const tokenFile = abs(str(u['token-file']) ?? str(u.tokenFile));
      return clean({
        name,
        token: str(u.token),
        username: str(u.username),
        password: str(u.password),
        certData: str(u['client-certificate-data']),
        certFile: abs(str(u['client-certificate'])),
        keyData: str(u['client-key-data']),
        keyFile: abs(str(u['client-key'])),
        authProvider: provider
          ? { name: String(provider.name ?? ''), config: (provider.config ?? {}) as Record<string, string> }
          : tokenFile
            ? { name: 'tokenFile', config: { tokenFile } }
            : undefined,
        exec: u.exec ?? undefined,
        impersonateUser: str(u.as),
      });
    });
    this.contexts = list(doc.contexts).map((e) => {
      const c = (e.context ?? {}) as Raw;
      const name = str(e.name);
      if (!name) throw new Error('kubeconfig: a context has no name');
      return clean({
        name,
        cluster: String(c.cluster ?? ''),
        user: String(c.user ?? ''),
        namespace: str(c.namespace),
      });
    });
    this.currentContext = str(doc['current-context']) ?? '';
  }

  /** The pod's service account, as client-node's loadFromCluster (env KUBERNETES_SERVICE_HOST/PORT). */
  loadFromCluster(pathPrefix = ''): void {
    const host = process.env.KUBERNETES_SERVICE_HOST ?? '';
    const port = process.env.KUBERNETES_SERVICE_PORT ?? '';
    const scheme = ['80', '8080', '8001'].includes(port) ? 'http' : 'https';
    const serverHost = net.isIPv6(host) ? `[${host}]` : host;
    const nsFile = `${pathPrefix}${saPrefix}/namespace`;
    this.clusters = [
      {
        name: 'inCluster',
        server: `${scheme}://${serverHost}:${port}`,
        caFile: `${pathPrefix}${saPrefix}/ca.crt`,
        skipTLSVerify: false,
      },
    ];
    this.users = [
      {
        name: 'inClusterUser',
        authProvider: { name: 'tokenFile', config: { tokenFile: `${pathPrefix}${saPrefix}/token` } },
      },
    ];
    this.contexts = [
      clean({
        name: 'inClusterContext',
        cluster: 'inCluster',
        user: 'inClusterUser',
        namespace: fs.existsSync(nsFile) ? fs.readFileSync(nsFile, 'utf8') : undefined,
      }),
    ];
    this.currentContext = 'inClusterContext';
  }

  /** One cluster and one user, nothing else (tests, and a user minus its exec plugin). */
  loadFromClusterAndUser(cluster: Cluster, user: User): void {
    this.clusters = [cluster];
    this.users = [user];
    this.contexts = [{ name: 'loaded-context', cluster: cluster.name, user: user.name }];
    this.currentContext = 'loaded-context';
  }

  getClusters(): Cluster[] {
    return this.clusters;
  }
  getUsers(): User[] {
    return this.users;
  }
  getContexts(): Context[] {
    return this.contexts;
  }
  addCluster(c: Cluster): void {
    this.clusters.push(c);
  }
  addUser(u: User): void {
    this.users.push(u);
  }
  addContext(c: Context): void {
    this.contexts.push(c);
  }
  getCurrentContext(): string {
    return this.currentContext;
  }
  setCurrentContext(name: string): void {
    this.currentContext = name;
  }
  getContextObject(name: string): Context | null {
    return this.contexts.find((c) => c.name === name) ?? null;
  }
  getCurrentCluster(): Cluster | null {
    const ctx = this.getContextObject(this.currentContext);
    return (ctx && this.clusters.find((c) => c.name === ctx.cluster)) ?? null;
  }
  getCurrentUser(): User | null {
    const ctx = this.getContextObject(this.currentContext);
    return (ctx && this.users.find((u) => u.name === ctx.user)) ?? null;
  }

  /**
   * TLS material and auth headers for a request, as client-node's applyToHTTPSOptions: files
   * are read on every call, so a certificate rotated on disk is picked up. A token-file user's
   * header is left to the connection (it caches and re-reads); exec is the connection's too.
   */
  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const cluster = this.getCurrentCluster();
    const user = this.getCurrentUser();
    const headers = (opts.headers ??= {}) as Record<string, string>;
    if (cluster) {
      const ca = material(cluster.caData, cluster.caFile);
      if (ca) opts.ca = ca;
      if (cluster.skipTLSVerify) opts.rejectUnauthorized = false;
      if (cluster.tlsServerName) opts.servername = cluster.tlsServerName;
    }
    if (!user) return;
    const cert = material(user.certData, user.certFile);
    const key = material(user.keyData, user.keyFile);
    if (cert) opts.cert = cert;
    if (key) opts.key = key;
    if (user.token) headers.Authorization = `Bearer ${user.token}`;
    if (user.username && user.password) opts.auth = `${user.username}:${user.password}`;
    if (user.impersonateUser) headers['Impersonate-User'] = user.impersonateUser;
    if (user.authProvider && user.authProvider.name !== 'tokenFile' && cluster) {
      this.delegate ??= import('@kubernetes/client-node').then(({ KubeConfig: Full }) => {
        const full = new Full();
        type Args = Parameters<typeof full.loadFromClusterAndUser>;
        full.loadFromClusterAndUser(
          { skipTLSVerify: false, ...cluster } as Args[0],
          { ...user, exec: undefined } as Args[1],
        );
        return full;
      });
      await (await this.delegate).applyToHTTPSOptions(opts);
    }
  }
}

function list(v: unknown): Raw[] {
  return Array.isArray(v) ? v.filter((e): e is Raw => !!e && typeof e === 'object') : [];
}

/** Inline base64 data wins over a file, as in client-go. */
function material(data: string | undefined, file: string | undefined): Buffer | undefined {
  if (data) return Buffer.from(data, 'base64');
  if (file) return fs.readFileSync(file);
  return undefined;
}

/** Drop undefined fields, so objects compare and print as the YAML had them. */
function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
