/**
 * Transport: one HTTP exchange with the apiserver, with what client-go's rest.Request wraps
 * around it — the client-side throttle before every attempt, 429 (and 5xx with Retry-After)
 * retried after the server's Retry-After, one retry after a 401 when re-reading the token
 * may help, metrics for every attempt, and typed errors (ApiError, NetworkError).
 */
import type * as http from 'node:http';
import type { IncomingHttpHeaders as Http2Headers, OutgoingHttpHeaders } from 'node:http2';
import https from 'node:https';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { RealClock, type Clock } from '../clock/index.js';
import { nopLogger, type Logger } from '../log/index.js';
import type { Connection } from './connection.js';
import { Http1Only, isConnectionSuspect, type Http2Link } from './h2.js';
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
  async stream(spec: RequestSpec, signal: AbortSignal): Promise<Readable> {
    const res = await this.exchange(spec, true, signal);
    return res.message as Readable;
  }

  private async exchange(
    spec: RequestSpec,
    streaming: boolean,
    signal?: AbortSignal,
  ): Promise<Response & { message?: Readable }> {
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
      const { agent, headers, h2 } = await this.conn.requestOptions();
      signal?.throwIfAborted();
      const start = performance.now();
      let res: Response & { message?: Readable };
      let reusedSocket = false;
      const onSocket = (r: boolean) => (reusedSocket = r);
      setRequestHeaders(spec, headers, streaming);
      try {
        if (h2) {
          try {
            res = await this.sendH2(h2, url, spec, headers, streaming, signal, onSocket);
          } catch (err) {
            if (!(err instanceof Http1Only)) throw err;
            this.conn.http2Declined(h2);
            res = await this.send(url, spec, agent, headers, streaming, signal, onSocket);
          }
        } else res = await this.send(url, spec, agent, headers, streaming, signal, onSocket);
      } catch (err) {
        this.metrics.request(spec.method, this.conn.host, '<error>', (performance.now() - start) / 1000);
        if (signal?.aborted) throw signal.reason;
        // A kept-alive socket the server closed just as we wrote to it: the request never
        // reached the server, so trying once more on a fresh socket is safe (not for POST).
        // On HTTP/2 the server says so itself (REFUSED_STREAM, a GOAWAY before the stream),
        // which makes any method safe to send again.
        const resetOnReuse =
          reusedSocket && spec.method !== 'POST' && (err as { code?: string }).code === 'ECONNRESET';
        if (!resetRetried && (resetOnReuse || (err as { unprocessed?: boolean }).unprocessed === true)) {
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
  ): Promise<Response & { message?: Readable }> {
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
        readBody(message, message.headers, status, done, resolve, reject);
      });
      req.end(spec.body);
    });
  }

  /** One exchange as a stream of the HTTP/2 link; the same contract as send. */
  private async sendH2(
    link: Http2Link,
    url: URL,
    spec: RequestSpec,
    headers: Record<string, string>,
    streaming: boolean,
    signal: AbortSignal | undefined,
    onSocket: (reused: boolean) => void,
  ): Promise<Response & { message?: Readable }> {
    const h2Headers: OutgoingHttpHeaders = { ':method': spec.method, ':path': url.pathname + url.search };
    for (const [k, v] of Object.entries(headers)) h2Headers[k.toLowerCase()] = v;
    let exchange;
    try {
      exchange = await link.request(h2Headers, {
        endStream: spec.body === undefined,
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      // The session was closing (GOAWAY) or gone before the stream existed: nothing was sent.
      const code = (err as { code?: string }).code;
      if (code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION')
        (err as { unprocessed?: boolean }).unprocessed = true;
      throw err;
    }
    onSocket(exchange.reused);
    const stream = exchange.stream;
    return new Promise((resolve, reject) => {
      let answered = false;
      let settled = false;
      const timer = streaming
        ? undefined
        : setTimeout(
            () => stream.destroy(new Error(`no complete response within ${this.timeoutMs} ms`)),
            this.timeoutMs,
          );
      timer?.unref();
      const done = () => {
        settled = true;
        if (timer) clearTimeout(timer);
      };
      const fail = (err: Error) => {
        if (settled) return;
        done();
        // REFUSED_STREAM: the server did not process it (RFC 9113 section 8.7).
        if (stream.rstCode === refusedStream) (err as { unprocessed?: boolean }).unprocessed = true;
        reject(err);
      };
      if (!streaming)
        stream.setTimeout(this.idleTimeoutMs, () => {
          const why = `no byte from the apiserver for ${this.idleTimeoutMs} ms`;
          exchange.suspect(why);
          stream.destroy(new Error(`${why} (connection taken for dead)`));
        });
      // A caller's guard that aborts because the connection went silent (the reflector's
      // watch deadline and inactivity guards) puts the session under suspicion too.
      if (signal) {
        const onAbort = () => {
          if (isConnectionSuspect(signal.reason))
            exchange.suspect(String(signal.reason?.message ?? signal.reason));
        };
        if (signal.aborted) onAbort();
        else {
          signal.addEventListener('abort', onAbort, { once: true });
          stream.once('close', () => signal.removeEventListener('abort', onAbort));
        }
      }
      stream.on('error', fail);
      stream.on('aborted', () => fail(new Error('the apiserver reset the HTTP/2 stream mid-response')));
      stream.on('close', () => {
        if (!answered) fail(new Error(`HTTP/2 stream closed before a response (code ${stream.rstCode})`));
      });
      stream.on('response', (raw: Http2Headers) => {
        answered = true;
        const status = Number(raw[':status'] ?? 0);
        const resHeaders: http.IncomingHttpHeaders = {};
        for (const [k, v] of Object.entries(raw)) if (!k.startsWith(':')) resHeaders[k] = v as string;
        if (streaming && status >= 200 && status <= 299) {
          stream.setTimeout(0);
          done();
          resolve({ status, headers: resHeaders, body: '', message: stream });
          return;
        }
        readBody(stream, resHeaders, status, done, resolve, reject);
      });
      if (spec.body !== undefined) stream.end(spec.body);
    });
  }
}

/** NGHTTP2_REFUSED_STREAM (RFC 9113 error code 0x7). */
const refusedStream = 7;

/** Accept, gzip and the body's headers, the same for both protocols. */
function setRequestHeaders(spec: RequestSpec, headers: Record<string, string>, streaming: boolean): void {
  headers.Accept = spec.accept ?? 'application/json';
  // Like Go's transport, ask for gzip and decompress; the apiserver compresses large
  // responses (lists) only. Not for watches, whose events must arrive as they happen.
  if (!streaming) headers['Accept-Encoding'] = 'gzip';
  if (spec.body !== undefined) {
    headers['Content-Type'] = spec.contentType ?? 'application/json';
    headers['Content-Length'] = String(Buffer.byteLength(spec.body));
  }
}

/** Reads a whole response body (gunzipped when the server compressed it). */
function readBody(
  message: Readable,
  headers: http.IncomingHttpHeaders,
  status: number,
  done: () => void,
  resolve: (res: Response) => void,
  reject: (err: Error) => void,
): void {
  const gzipped = /^\s*gzip\s*$/i.test(headers['content-encoding'] ?? '');
  const body$ = gzipped ? message.pipe(zlib.createGunzip()) : message;
  if (gzipped) message.on('error', (err) => body$.destroy(err));
  body$.setEncoding('utf8');
  let body = '';
  body$.on('data', (chunk: string) => (body += chunk));
  body$.on('end', () => {
    done();
    resolve({ status, headers, body });
  });
  body$.on('error', (err) => {
    done();
    reject(err);
  });
}

/** Retry-After in seconds (the apiserver sends delta-seconds, never an HTTP date). */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}
