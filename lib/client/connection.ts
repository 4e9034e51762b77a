/**
 * Connection: the server URL, a keep-alive agent carrying the TLS material, and the
 * headers that authenticate each request.
 *
 * Credentials come from the kubeconfig's applyToHTTPSOptions (kubeconfig.ts), asked again for every
 * request (cert files are re-read, auth providers refresh), except exec plugins, which
 * exec.ts runs (single flight, re-run at expiry and after a 401). New client-certificate
 * material gets a new agent. The one thing it does
 * not do well is token rotation for service accounts: its FileAuth re-reads the token file
 * only after 60 s and never on a 401. So for a token-file user (in-cluster) we read the file
 * ourselves: at most once a minute (like client-go's cached token source), and at once after
 * a 401 (see `invalidate`).
 */
import fs from 'node:fs';
import type * as http from 'node:http';
import https from 'node:https';
import { KubeConfig, type KubeConfigLike } from './kubeconfig.js';
import { RealClock, type Clock } from '../clock/index.js';
import { nopLogger, type Logger } from '../log/index.js';
import { tokenFileOf } from './config.js';
import { proxyFor, TunnelingHttpAgent, TunnelingHttpsAgent } from './proxy.js';
import { nodeHttp } from './node-http.js';
import { Http2Link } from './h2.js';
import { ExecCredentialSource, type ExecConfig, type ExecCredential } from './exec.js';

/** client-go re-reads a service-account token file at most this often. */
const tokenFileTTLms = 60_000;
/** client-go dials with 30 s TCP keep-alive: half-open connections surface instead of hanging. */
const tcpKeepAliveMs = 30_000;
/**
 * A pooled socket idle this long is closed (Go's transport: 90 s). Short, because an idle
 * socket cannot be probed through a middlebox that stalls: closing it before the transport's
 * 30 s request idle guard runs out means a stalled link never sits in the pool for the next
 * request to hang on — after a stall, only sockets that are not silent are reused.
 */
export const defaultIdleSocketTimeoutMs = 15_000;

/** A bearer token that changes over time (e.g. a ServiceAccount's, from TokenRequest). */
export interface TokenSource {
  /** The current token; called for every request, so cache inside. */
  token(): Promise<string>;
  /** After a 401: the next token() must not answer with the same token. */
  invalidate(): void;
}

export interface ConnectionOptions {
  clock?: Clock;
  userAgent?: string;
  /** Extra headers on every request (e.g. Impersonate-User). */
  headers?: Record<string, string>;
  /** Overrides the kubeconfig user's credentials with this bearer token. */
  tokenSource?: TokenSource;
  /** Where the warning about switched-off TLS verification goes. */
  logger?: Logger;
  /** Close a pooled socket after this much idle time. Default 15 s (defaultIdleSocketTimeoutMs). */
  idleSocketTimeoutMs?: number;
  /**
   * Offer HTTP/2 (one multiplexed connection with ping health checks, see h2.ts) to an https
   * server reached without a proxy; HTTP/1.1 when the server declines. Default true, unless
   * the environment sets TS_KCM_HTTP2=0.
   */
  http2?: boolean;
}

/** Configurations already warned about, so the clients sharing one warn once. */
const warnedInsecure = new WeakSet<KubeConfigLike>();

/**
 * TLS verification of the apiserver is on unless the user switched it off explicitly: the
 * kubeconfig's insecure-skip-tls-verify, or Node's NODE_TLS_REJECT_UNAUTHORIZED=0. Either
 * way it is said once, as a warning, since anyone on the path could then act as the apiserver
 * and collect the credentials we send.
 */
function warnIfUnverified(kc: KubeConfigLike, server: URL, skipTLSVerify: boolean, logger: Logger): void {
  if (server.protocol !== 'https:' || warnedInsecure.has(kc)) return;
  const why = skipTLSVerify
    ? 'insecure-skip-tls-verify is set in the kubeconfig'
    : process.env.NODE_TLS_REJECT_UNAUTHORIZED === '0'
      ? 'NODE_TLS_REJECT_UNAUTHORIZED=0 is set'
      : undefined;
  if (!why) return;
  warnedInsecure.add(kc);
  logger.warn(
    'TLS verification of the apiserver certificate is off: anyone on the network path can impersonate it',
    {
      server: server.host,
      reason: why,
    },
  );
}

export class Connection {
  readonly server: URL;
  /** host:port, the `host` label of the client metrics. */
  readonly host: string;
  private readonly kc: KubeConfigLike;
  private readonly clock: Clock;
  private readonly tokenFile?: string;
  private readonly extraHeaders: Record<string, string>;
  private readonly userAgent: string;
  private readonly proxy?: URL;
  private readonly idleSocketTimeoutMs: number;
  private token?: { value: string; readAt: number };
  private readonly exec?: ExecCredentialSource;
  private lastExec?: ExecCredential;
  private readonly tokenSource?: TokenSource;
  private agentPromise?: Promise<http.Agent>;
  private agent?: http.Agent;
  private tls?: { cert: https.RequestOptions['cert']; key: https.RequestOptions['key'] };
  private readonly http2: boolean;
  private h2?: Http2Link;
  private h2Declined = false;
  private readonly logger: Logger;

  constructor(kc: KubeConfigLike, opts: ConnectionOptions = {}) {
    const cluster = kc.getCurrentCluster();
    if (!cluster)
      throw new Error(`kubeconfig context ${JSON.stringify(kc.getCurrentContext())} has no cluster`);
    warnIfUnverified(kc, new URL(cluster.server), cluster.skipTLSVerify === true, opts.logger ?? nopLogger());
    const user = kc.getCurrentUser();
    if (user?.exec) {
      // Our own runner (single flight, 401 re-run); client-node sees the user without it.
      this.exec = new ExecCredentialSource(user.exec as ExecConfig);
      const rest = new KubeConfig();
      rest.loadFromClusterAndUser(cluster, { ...user, exec: undefined });
      kc = rest;
    }
    this.kc = kc;
    this.server = new URL(cluster.server);
    this.proxy = proxyFor(this.server, cluster.proxyUrl);
    this.host = this.server.host;
    this.clock = opts.clock ?? new RealClock();
    this.tokenFile = tokenFileOf(kc);
    this.extraHeaders = opts.headers ?? {};
    this.userAgent = opts.userAgent ?? 'ts-kcm';
    this.tokenSource = opts.tokenSource;
    this.idleSocketTimeoutMs = opts.idleSocketTimeoutMs ?? defaultIdleSocketTimeoutMs;
    this.logger = opts.logger ?? nopLogger();
    this.http2 = (opts.http2 ?? process.env.TS_KCM_HTTP2 !== '0') && this.secure && !this.proxy;
  }

  get secure(): boolean {
    return this.server.protocol === 'https:';
  }

  /** Full URL for an API path (the server URL may carry a path prefix, e.g. behind a proxy). */
  url(path: string): URL {
    const prefix = this.server.pathname.replace(/\/+$/, '');
    return new URL(prefix + path, this.server);
  }

  /**
   * The agent and headers for one request, and the HTTP/2 link to try first (absent once the
   * server declined HTTP/2, or when it is not offered).
   */
  async requestOptions(): Promise<{ agent: http.Agent; headers: Record<string, string>; h2?: Http2Link }> {
    const opts: https.RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = String(v);
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    if (this.tokenFile) headers.Authorization = `Bearer ${this.readToken()}`;
    if (this.exec) {
      const cred = (this.lastExec = await this.exec.get());
      if (cred.token) headers.Authorization = `Bearer ${cred.token}`;
      if (cred.cert && cred.key) {
        opts.cert = cred.cert;
        opts.key = cred.key;
      }
    }
    if (this.tokenSource) headers.Authorization = `Bearer ${await this.tokenSource.token()}`;
    headers['User-Agent'] = this.userAgent;
    Object.assign(headers, this.extraHeaders);
    // Cert files are read again for every request (and exec plugins may hand out a new
    // cert): new material gets a new agent, so the next connection presents it.
    if (this.agent && this.tlsChanged(opts)) this.retireAgent();
    this.agentPromise ??= Promise.resolve(this.makeAgent(opts));
    const agent = await this.agentPromise;
    return { agent, headers, ...(this.h2 ? { h2: this.h2 } : {}) };
  }

  /**
   * After a 401: drop the cached token so the next request re-reads the file. Returns true
   * when that may help (a token-file user), so the caller retries once.
   */
  invalidate(): boolean {
    if (this.tokenSource) {
      this.tokenSource.invalidate();
      return true;
    }
    if (this.exec) {
      this.exec.invalidate(this.lastExec);
      return true;
    }
    if (!this.tokenFile) return false;
    this.token = undefined;
    return true;
  }

  close(): void {
    this.agent?.destroy();
    this.h2?.close();
  }

  /** The server chose HTTP/1.1 in the handshake: the agent carries every request from now on. */
  http2Declined(link: Http2Link): void {
    if (this.h2 !== link) return;
    this.logger.debug('the apiserver does not speak HTTP/2; using HTTP/1.1', { server: this.host });
    this.h2.close();
    this.h2 = undefined;
    this.h2Declined = true;
  }

  private readToken(): string {
    const now = this.clock.now();
    if (!this.token || now - this.token.readAt >= tokenFileTTLms) {
      this.token = { value: fs.readFileSync(this.tokenFile as string, 'utf8').trim(), readAt: now };
    }
    return this.token.value;
  }

  private tlsChanged(opts: https.RequestOptions): boolean {
    return !sameMaterial(opts.cert, this.tls?.cert) || !sameMaterial(opts.key, this.tls?.key);
  }

  /** The old agent takes no new requests; its sockets close once their requests finish. */
  private retireAgent(): void {
    const old = this.agent as http.Agent;
    old.keepSocketAlive = () => false;
    for (const sockets of Object.values(old.freeSockets)) for (const s of sockets ?? []) s.destroy();
    this.agent = undefined;
    this.agentPromise = undefined;
    this.h2?.retire();
    this.h2 = undefined;
  }

  private makeAgent(opts: https.RequestOptions): http.Agent {
    this.tls = { cert: opts.cert, key: opts.key };
    // `timeout` closes a socket idle in the pool; on a socket in use it only emits an event
    // (the transport sets its own guard on non-watch requests).
    const common = { keepAlive: true, keepAliveMsecs: tcpKeepAliveMs, timeout: this.idleSocketTimeoutMs };
    const Https = this.proxy ? TunnelingHttpsAgent.bind(null, this.proxy) : https.Agent;
    const Http = this.proxy ? TunnelingHttpAgent.bind(null, this.proxy) : nodeHttp.Agent;
    this.agent = this.secure
      ? new Https({
          ...common,
          ca: opts.ca,
          cert: opts.cert,
          key: opts.key,
          pfx: opts.pfx,
          passphrase: opts.passphrase,
          servername: opts.servername,
          ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
        })
      : new Http(common);
    if (this.http2 && !this.h2Declined)
      this.h2 = new Http2Link({
        server: this.server,
        tls: {
          ca: opts.ca,
          cert: opts.cert,
          key: opts.key,
          pfx: opts.pfx,
          passphrase: opts.passphrase,
          servername: opts.servername,
          ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
        },
        logger: this.logger,
      });
    return this.agent;
  }
}

function sameMaterial(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return a === b;
}
