/**
 * Transport: one HTTP exchange with the apiserver, with what client-go's rest.Request wraps
 * around it — the client-side throttle before every attempt, 429 (and 5xx with Retry-After)
 * retried after the server's Retry-After, one retry after a 401 when re-reading the token
 * may help, metrics for every attempt, and typed errors (ApiError, NetworkError).
 */
import type * as http from 'node:http';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import { RealClock, type Clock } from '../clock/index.js';
import { nopLogger, type Logger } from '../log/index.js';
import type { Connection } from './connection.js';
import { nodeHttp } from './node-http.js';
import { ApiError, NetworkError } from './errors.js';
import { noClientMetrics, type ClientMetrics } from './metrics.js';
import { unthrottled, type Throttle } from './throttle.js';

/** client-go's maximum number of retries after 429 / Retry-After (rest.Request maxRetries). */
export const defaultMaxRetries = 10;
/** Upper bound for a single request (the apiserver's own default request timeout is 60 s). */
export const defaultRequestTimeoutMs = 60_000;
/**
 * A non-watch request whose socket moves no byte either way for this long is taken for a
 * half-open connection and destroyed (a NetworkError the caller retries). client-go gets the
 * same bound from its HTTP/2 health check (30 s read idle, then a 15 s ping); HTTP/1.1 has no
 * ping, so the silence itself is the signal. Watches are guarded by the reflector instead.
 */
export const defaultRequestIdleTimeoutMs = 30_000;
/** TCP keep-alive probes start after this much idle time (client-go's dialer: 30 s). */
export const tcpKeepAliveDelayMs = 30_000;
/** Retry-After missing or unparsable on a 429: wait this long (client-go waits 1 s). */
const defaultRetryAfterSeconds = 1;

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestSpec {
  method: HttpMethod;
  /** API path with query string, starting with '/'. */
  path: string;
  body?: string;
  contentType?: string;
  accept?: string;
  /** Kubernetes verb and resource, for error messages ('list', 'configmaps'). */
  verb: string;
  resource: string;
  /** Cancels the request: before it is sent, while throttled or waiting to retry, or in flight. */
  signal?: AbortSignal;
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface TransportOptions {
  throttle?: Throttle;
  metrics?: ClientMetrics;
  clock?: Clock;
  logger?: Logger;
  maxRetries?: number;
  requestTimeoutMs?: number;
  /** See defaultRequestIdleTimeoutMs. */
  requestIdleTimeoutMs?: number;
}

export class Transport {
  private readonly throttle: Throttle;
  private readonly metrics: ClientMetrics;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly idleTimeoutMs: number;

  constructor(
    readonly conn: Connection,
    opts: TransportOptions = {},
  ) {
    this.throttle = opts.throttle ?? unthrottled;
    this.metrics = opts.metrics ?? noClientMetrics;
    this.clock = opts.clock ?? new RealClock();
    this.logger = opts.logger ?? nopLogger();
    this.maxRetries = opts.maxRetries ?? defaultMaxRetries;
    this.timeoutMs = opts.requestTimeoutMs ?? defaultRequestTimeoutMs;
    this.idleTimeoutMs = opts.requestIdleTimeoutMs ?? defaultRequestIdleTimeoutMs;
  }

  /** A request whose whole body is read. Non-2xx throws ApiError unless `raw`. */
  async request(spec: RequestSpec, raw = false): Promise<Response> {
    const res = await this.exchange(spec, false, spec.signal);
    if (!raw && (res.status < 200 || res.status > 299)) throw this.apiError(spec, res);
    return res;
  }

  /**
   * A streaming request (watch): resolves with the response once 2xx headers arrive. Only
   * this initial request is throttled, as in client-go; the stream then runs free.
   */
  async stream(spec: RequestSpec, signal: AbortSignal): Promise<IncomingMessage> {
    const res = await this.exchange(spec, true, signal);
    return res.message as IncomingMessage;
  }

  private async exchange(
    spec: RequestSpec,
    streaming: boolean,
    signal?: AbortSignal,
  ): Promise<Response & { message?: IncomingMessage }> {
    const url = this.conn.url(spec.path);
    let retries = 0;
    let authRetried = false;
    let resetRetried = false;
    for (;;) {
      signal?.throwIfAborted();
      // The throttle gives up the wait when the request is cancelled (and returns the token).
      const waited = await this.throttle.acquire(signal);
      this.metrics.rateLimiterWait(spec.method, this.conn.host, waited / 1000);
      if (waited > 1000)
        this.logger.info('client-side throttling', {
          waitedMs: Math.round(waited),
          verb: spec.verb,
          resource: spec.resource,
        });
      // Credentials are fetched per attempt (exec plugins, rotated tokens); a failure here is
      // an auth problem, not a network one, and propagates as is.
      const { agent, headers } = await this.conn.requestOptions();
      signal?.throwIfAborted();
      const start = performance.now();
      let res: Response & { message?: IncomingMessage };
      let reusedSocket = false;
      try {
        res = await this.send(url, spec, agent, headers, streaming, signal, (r) => (reusedSocket = r));
      } catch (err) {
        this.metrics.request(spec.method, this.conn.host, '<error>', (performance.now() - start) / 1000);
        if (signal?.aborted) throw signal.reason;
        // A kept-alive socket the server closed just as we wrote to it: the request never
        // reached the server, so trying once more on a fresh socket is safe (not for POST).
        if (
          reusedSocket &&
          !resetRetried &&
          spec.method !== 'POST' &&
          (err as { code?: string }).code === 'ECONNRESET'
        ) {
          resetRetried = true;
          continue;
        }
        throw new NetworkError(spec.method, url.toString(), err);
      }
      this.metrics.request(spec.method, this.conn.host, res.status, (performance.now() - start) / 1000);
      this.logger.debug('request', {
        method: spec.method,
        url: url.pathname + url.search,
        status: res.status,
        ms: Math.round(performance.now() - start),
      });

      if (res.status === 401 && !authRetried && this.conn.invalidate()) {
        authRetried = true;
        continue;
      }
      const retryAfter = parseRetryAfter(res.headers['retry-after']);
      const retryable = res.status === 429 || (res.status >= 500 && retryAfter !== undefined);
      if (retryable && retries < this.maxRetries) {
        retries++;
        const seconds = retryAfter ?? defaultRetryAfterSeconds;
        this.logger.debug('retrying after server asked to wait', {
          status: res.status,
          seconds,
          attempt: retries,
          verb: spec.verb,
          resource: spec.resource,
        });
        await this.clock.sleep(seconds * 1000, signal);
        continue;
      }
      if (streaming && (res.status < 200 || res.status > 299)) throw this.apiError(spec, res);
      return res;
    }
  }

  private apiError(spec: RequestSpec, res: Response): ApiError {
    const ra = res.headers['retry-after'];
    return ApiError.fromResponse(
      res.status,
      res.body,
      spec.verb,
      spec.resource,
      Array.isArray(ra) ? ra[0] : ra,
    );
  }

  /**
   * One HTTP exchange. For a 2xx stream the body is left unread in `message`; otherwise the
   * body is read whole (an error response of a stream too, so it can become an ApiError).
   */
  private async send(
    url: URL,
    spec: RequestSpec,
    agent: http.Agent,
    headers: Record<string, string>,
    streaming: boolean,
    signal: AbortSignal | undefined,
    onSocket: (reused: boolean) => void,
  ): Promise<Response & { message?: IncomingMessage }> {
    headers.Accept = spec.accept ?? 'application/json';
    // Like Go's transport, ask for gzip and decompress; the apiserver compresses large
    // responses (lists) only. Not for watches, whose events must arrive as they happen.
    if (!streaming) headers['Accept-Encoding'] = 'gzip';
    if (spec.body !== undefined) {
      headers['Content-Type'] = spec.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(spec.body));
    }
    const mod = this.conn.secure ? https : nodeHttp;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method: spec.method, headers, agent, signal });
      // A whole-request deadline for ordinary requests; a watch is bounded by its
      // timeoutSeconds and the informer's inactivity guard instead.
      const timer = streaming
        ? undefined
        : setTimeout(
            () => req.destroy(new Error(`no complete response within ${this.timeoutMs} ms`)),
            this.timeoutMs,
          );
      timer?.unref();
      const done = () => timer && clearTimeout(timer);
      req.on('socket', (socket) => {
        onSocket(req.reusedSocket);
        // Every socket, new or pooled, probes an idle peer: a vanished host or a dropped NAT
        // entry surfaces within 30 s + 10 probes 1 s apart (Node sets TCP_KEEPCNT 10 and
        // TCP_KEEPINTVL 1 s) instead of the kernel's two hours. Probes are answered by any
        // middlebox that keeps TCP alive, hence the silence guards above and in the reflector.
        socket.setKeepAlive(true, tcpKeepAliveDelayMs);
      });
      if (!streaming)
        req.setTimeout(this.idleTimeoutMs, () =>
          req.destroy(
            new Error(`no byte from the apiserver for ${this.idleTimeoutMs} ms (connection taken for dead)`),
          ),
        );
      req.on('error', (err) => {
        done();
        reject(err);
      });
      req.on('response', (message) => {
        const status = message.statusCode ?? 0;
        if (streaming && status >= 200 && status <= 299) {
          done();
          resolve({ status, headers: message.headers, body: '', message });
          return;
        }
        const gzipped = /^\s*gzip\s*$/i.test(message.headers['content-encoding'] ?? '');
        const body$ = gzipped ? message.pipe(zlib.createGunzip()) : message;
        if (gzipped) message.on('error', (err) => body$.destroy(err));
        body$.setEncoding('utf8');
        let body = '';
        body$.on('data', (chunk: string) => (body += chunk));
        body$.on('end', () => {
          done();
          resolve({ status, headers: message.headers, body });
        });
        body$.on('error', (err) => {
          done();
          reject(err);
        });
      });
      req.end(spec.body);
    });
  }
}

/** Retry-After in seconds (the apiserver sends delta-seconds, never an HTTP date). */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}
