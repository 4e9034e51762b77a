/**
 * An HTTP-level fault proxy for tests: ts-kcm talks plain HTTP to it on 127.0.0.1, and it
 * forwards each request to kube-apiserver over TLS with the credentials of a kubeconfig (so
 * the apiserver sees that user, whatever ts-kcm sent). Unlike the TCP FaultProxy it can see
 * requests, so a test can make it answer the way an overloaded or broken server does:
 *
 * - tooManyRequests: 429 with Retry-After, not forwarded (an APF or max-inflight rejection);
 * - serverError: 500 without Retry-After, not forwarded (a 500 storm);
 * - truncate: forwarded, but only half of the answer's body is sent (a list's JSON cut off,
 *   a watch line cut in the middle), then the response ends;
 * - wrongContentType: forwarded, but answered with 200 text/html (a captive portal or a
 *   misrouted load balancer) — the write may have happened, the client cannot know.
 *
 * Every request is logged with its arrival time and whether it was faulted, so a test can
 * count retries. Loopback only; stops by itself after `maxLifetimeMs`.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadKubeConfig } from '../../lib/client/config.js';
import { Connection } from '../../lib/client/connection.js';

export type HttpFaultKind = 'tooManyRequests' | 'serverError' | 'truncate' | 'wrongContentType';

export interface HttpFault {
  kind: HttpFaultKind;
  /** For tooManyRequests. Default 1. */
  retryAfterSeconds?: number;
  /** Share of requests hit, in (0, 1]. Default 1. */
  fraction?: number;
  /** Only requests whose path and query match. Default: all. */
  match?: RegExp;
}

export interface LoggedRequest {
  at: number;
  method: string;
  path: string;
  watch: boolean;
  fault?: HttpFaultKind;
}

export interface HttpFaultProxyOptions {
  /** The kubeconfig whose cluster and user the proxy uses upstream. */
  kubeconfig: string;
  /** Stop on its own after this long. Default 10 minutes. */
  maxLifetimeMs?: number;
}

export class HttpFaultProxy {
  readonly log: LoggedRequest[] = [];
  private fault?: HttpFault & { until: number };
  private readonly streams = new Set<http.ServerResponse>();
  private readonly lifetimeTimer: NodeJS.Timeout;
  private stopped = false;

  private constructor(
    private readonly server: http.Server,
    private readonly upstream: Connection,
    readonly port: number,
    maxLifetimeMs: number,
  ) {
    this.lifetimeTimer = setTimeout(() => void this.stop(), maxLifetimeMs);
    this.lifetimeTimer.unref();
  }

  static async start(opts: HttpFaultProxyOptions): Promise<HttpFaultProxy> {
    const upstream = new Connection(loadKubeConfig({ kubeconfig: opts.kubeconfig }), {
      userAgent: 'fault-proxy',
    });
    if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(upstream.server.hostname))
      throw new Error(`http fault proxy: upstream ${upstream.server.hostname} is not a loopback address`);
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const proxy = new HttpFaultProxy(server, upstream, port, opts.maxLifetimeMs ?? 600_000);
    server.on('request', (req, res) => void proxy.handle(req, res));
    return proxy;
  }

  /** A kubeconfig for the client side: plain HTTP to the proxy, a dummy token (replaced upstream). */
  kubeconfigYaml(): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: fault-proxy`,
      `  cluster: { server: "http://127.0.0.1:${this.port}", insecure-skip-tls-verify: true }`,
      'users:',
      '- name: fault-proxy',
      '  user: { token: replaced-by-the-proxy }',
      'contexts:',
      '- name: fault-proxy',
      '  context: { cluster: fault-proxy, user: fault-proxy }',
      'current-context: fault-proxy',
      '',
    ].join('\n');
  }

  /** Misbehave for `ms` from now (one fault at a time; a new one replaces the old). */
  inject(fault: HttpFault, ms: number): void {
    this.fault = { ...fault, until: Date.now() + ms };
  }

  clear(): void {
    this.fault = undefined;
  }

  /** End every forwarded stream (watch) now, so the clients must come back through the faults. */
  cutStreams(): number {
    const n = this.streams.size;
    for (const res of [...this.streams]) res.destroy();
    return n;
  }

  requestsBetween(from: number, to: number): LoggedRequest[] {
    return this.log.filter((r) => r.at >= from && r.at < to);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.lifetimeTimer);
    this.cutStreams();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.upstream.close();
  }

  private pick(path: string): HttpFault | undefined {
    const f = this.fault;
    if (!f || Date.now() >= f.until) return undefined;
    if (f.match && !f.match.test(path)) return undefined;
    return Math.random() < (f.fraction ?? 1) ? f : undefined;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    const watch = /[?&]watch=(1|true)\b/.test(path);
    const fault = this.pick(path);
    this.log.push({ at: Date.now(), method: req.method ?? 'GET', path, watch, fault: fault?.kind });
    if (fault?.kind === 'tooManyRequests' || fault?.kind === 'serverError') {
      req.resume();
      const code = fault.kind === 'tooManyRequests' ? 429 : 500;
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (code === 429) headers['Retry-After'] = String(fault.retryAfterSeconds ?? 1);
      res.writeHead(code, headers);
      res.end(
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          code,
          reason: code === 429 ? 'TooManyRequests' : 'InternalError',
          message: code === 429 ? 'the fault proxy says: too many requests' : 'the fault proxy says: boom',
        }),
      );
      return;
    }
    let up: http.IncomingMessage;
    try {
      up = await this.forward(req, path);
    } catch (err) {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`fault proxy: upstream failed: ${(err as Error).message}`);
      return;
    }
    if (fault?.kind === 'wrongContentType') {
      up.resume();
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html><body><h1>Welcome</h1>not the apiserver you were looking for</body></html>');
      return;
    }
    const headers = { ...up.headers };
    delete headers['content-length'];
    delete headers.connection;
    delete headers['transfer-encoding'];
    res.writeHead(up.statusCode ?? 502, headers);
    if (fault?.kind === 'truncate') {
      // Half of the first chunk, then the end: a list's JSON or a watch line cut in the middle.
      up.once('data', (chunk: Buffer) => {
        res.end(chunk.subarray(0, Math.max(1, Math.floor(chunk.length / 2))));
        up.destroy();
      });
      up.once('end', () => res.end());
      return;
    }
    if (watch) {
      this.streams.add(res);
      res.on('close', () => {
        this.streams.delete(res);
        up.destroy();
      });
    }
    up.pipe(res);
  }

  private async forward(req: http.IncomingMessage, path: string): Promise<http.IncomingMessage> {
    const { agent, headers: auth } = await this.upstream.requestOptions();
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined) continue;
      if (['host', 'authorization', 'connection', 'accept-encoding', 'user-agent'].includes(k)) continue;
      headers[k] = v;
    }
    Object.assign(headers, auth);
    headers['user-agent'] = req.headers['user-agent'] ?? 'fault-proxy';
    return new Promise((resolve, reject) => {
      const up = https.request(this.upstream.url(path), { method: req.method, headers, agent }, resolve);
      up.on('error', reject);
      req.pipe(up);
    });
  }
}
