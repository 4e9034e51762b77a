/**
 * HTTP/2 to the apiserver, as client-go talks to it: one TLS connection per client carries
 * every request and watch as its own stream, and a health check pings the connection when
 * nothing has been read from it for a while, so a silently dead link (half-open, a middlebox
 * that stalls) fails every stream on it within readIdle + pingTimeout instead of hanging.
 * client-go's values (staging/src/k8s.io/client-go/transport/transport.go, via
 * golang.org/x/net/http2's ReadIdleTimeout and PingTimeout): 30 s and 15 s.
 *
 * The server picks the protocol in the TLS handshake (ALPN). A server that answers
 * http/1.1 — an HTTP/1.1-only proxy or test server — is remembered, and the connection falls
 * back to its keep-alive agent for good.
 *
 * Measured against the local kube-apiserver (Node 24, 3,000 GETs, 32 in flight): 1 HTTP/2
 * connection 1,900 requests/s at ~200 µs of client CPU each; 32 HTTP/1.1 sockets 1,550/s at
 * ~330 µs each.
 */
import type {
  ClientHttp2Session,
  ClientHttp2Stream,
  ClientSessionRequestOptions,
  OutgoingHttpHeaders,
} from 'node:http2';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { nopLogger, type Logger } from '../log/index.js';

const require = createRequire(import.meta.url);
// Loaded on first use: a client that never reaches an HTTP/2 server does not pay for it.
let http2Module: typeof import('node:http2') | undefined;
function http2(): typeof import('node:http2') {
  return (http2Module ??= require('node:http2') as typeof import('node:http2'));
}

/** No byte read for this long: ping (golang.org/x/net/http2 ReadIdleTimeout as client-go sets it). */
export const defaultReadIdleTimeoutMs = 30_000;
/** A ping unanswered this long: the connection is dead (client-go's PingTimeout). */
export const defaultPingTimeoutMs = 15_000;
/** TCP keep-alive probes start after this much idle time (client-go's dialer: 30 s). */
const tcpKeepAliveDelayMs = 30_000;
/** A TCP connect not done within this fails (client-go's dialer Timeout). */
export const defaultDialTimeoutMs = 30_000;
/** A TLS handshake not done within this fails (client-go's TLSHandshakeTimeout). */
export const defaultHandshakeTimeoutMs = 10_000;

export interface Http2LinkOptions {
  server: URL;
  /** TLS material and verification settings (ca, cert, key, servername, rejectUnauthorized…). */
  tls: tls.ConnectionOptions;
  readIdleTimeoutMs?: number;
  pingTimeoutMs?: number;
  /** See defaultDialTimeoutMs. */
  dialTimeoutMs?: number;
  /**
   * See defaultHandshakeTimeoutMs. Without a bound, a link that goes silent during the
   * handshake (no RST, no FIN) would hold every later request of this client waiting on it.
   */
  handshakeTimeoutMs?: number;
  logger?: Logger;
}

/** A request's stream, and whether its session carried requests before (a retry hint). */
export interface Http2Exchange {
  stream: ClientHttp2Stream;
  reused: boolean;
  /**
   * This stream's own silence guard fired (a request with no byte for its idle timeout, a
   * watch still open past its deadline): no new stream goes on its session, and a ping decides
   * at once whether the streams still on it are failed. See Http2Link.suspect.
   */
  suspect(why: string): void;
}

/**
 * Set on an abort reason (or error) that says the connection under a stream is likely dead,
 * not just the stream: the transport then suspects the stream's HTTP/2 session.
 */
export function isConnectionSuspect(reason: unknown): boolean {
  return (reason as { connectionSuspect?: unknown } | undefined)?.connectionSuspect === true;
}

/** Thrown when the server chose HTTP/1.1 in the handshake. */
export class Http1Only extends Error {}

/**
 * One HTTP/2 session at a time, opened on demand. A session that closes, errs, receives
 * GOAWAY or fails its health check is dropped; the next request opens a new one while the
 * streams still on the old one finish or fail there.
 */
export class Http2Link {
  private readonly opts: Required<Omit<Http2LinkOptions, 'logger'>> & { logger: Logger };
  private current?: Entry;
  private connecting?: Promise<Entry>;
  private closed = false;

  constructor(opts: Http2LinkOptions) {
    this.opts = {
      readIdleTimeoutMs: defaultReadIdleTimeoutMs,
      pingTimeoutMs: defaultPingTimeoutMs,
      dialTimeoutMs: defaultDialTimeoutMs,
      handshakeTimeoutMs: defaultHandshakeTimeoutMs,
      logger: nopLogger(),
      ...opts,
    };
  }

  /**
   * A stream on the live session (opened if there is none); throws Http1Only if the server
   * does not speak h2. While streams are open the session keeps the process alive; idle, it
   * does not.
   */
  async request(headers: OutgoingHttpHeaders, options: ClientSessionRequestOptions): Promise<Http2Exchange> {
    if (this.closed) throw new Error('connection closed');
    let entry = this.current;
    if (!entry || entry.session.closed || entry.session.destroyed) {
      this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
      entry = await this.connecting;
    }
    const reused = entry.used;
    entry.used = true;
    const stream = entry.session.request(headers, options);
    const e = entry;
    if (e.active++ === 0) e.session.ref();
    stream.once('close', () => {
      if (--e.active === 0 && !e.session.destroyed) e.session.unref();
    });
    return { stream, reused, suspect: (why) => this.suspect(e, why) };
  }

  /**
   * One stream's guard saw its connection go silent. The health check alone would take up to
   * readIdle + pingTimeout from the last byte; meanwhile the re-watch or retry that follows the
   * guard would be sent on the same silent session and hang as well. So the session is taken
   * out of use now (the next request dials a new one) and pinged: an answer closes it gently
   * (its open streams finish), none within pingTimeout fails its open streams.
   */
  private suspect(e: Entry, why: string): void {
    if (e.suspected || e.session.destroyed) return;
    e.suspected = true;
    if (this.current === e) this.current = undefined;
    const { pingTimeoutMs } = this.opts;
    this.opts.logger.debug('HTTP/2 connection suspected, pinging it', { server: this.opts.server.host, why });
    const dead = () =>
      e.session.destroy(
        new Error(`${why}, and no ping answer within ${pingTimeoutMs} ms (connection taken for dead)`),
      );
    const deadline = setTimeout(dead, pingTimeoutMs);
    deadline.unref();
    const sent = e.session.ping((err) => {
      clearTimeout(deadline);
      if (err) dead();
      else e.session.close();
    });
    if (!sent) {
      clearTimeout(deadline);
      dead();
    }
  }

  /** No new streams; the open ones finish (new TLS material, or the client closing). */
  retire(): void {
    const cur = this.current;
    this.current = undefined;
    cur?.session.close();
  }

  close(): void {
    this.closed = true;
    const cur = this.current;
    this.current = undefined;
    cur?.session.destroy();
  }

  private async connect(): Promise<Entry> {
    const { server } = this.opts;
    const host = server.hostname.replace(/^\[|\]$/g, '');
    const socket = tls.connect({
      ...this.opts.tls,
      host,
      port: Number(server.port || 443),
      // SNI carries names only (RFC 6066); for an IP the certificate is still checked against it.
      servername: this.opts.tls.servername ?? (isIP(host) ? undefined : host),
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    const { dialTimeoutMs, handshakeTimeoutMs } = this.opts;
    try {
      await new Promise<void>((resolve, reject) => {
        let timer = setTimeout(
          () => socket.destroy(new Error(`no TCP connection to ${server.host} within ${dialTimeoutMs} ms`)),
          dialTimeoutMs,
        );
        socket.once('connect', () => {
          clearTimeout(timer);
          timer = setTimeout(
            () =>
              socket.destroy(
                new Error(`no TLS handshake with ${server.host} within ${handshakeTimeoutMs} ms`),
              ),
            handshakeTimeoutMs,
          );
        });
        socket.once('secureConnect', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
        // Closed without an error (it should not happen, but nothing may wait forever).
        socket.once('close', () => {
          clearTimeout(timer);
          reject(new Error(`connection to ${server.host} closed during the TLS handshake`));
        });
      });
    } catch (err) {
      socket.destroy();
      throw err;
    }
    if (socket.alpnProtocol !== 'h2') {
      socket.destroy();
      throw new Http1Only(`${server.host} chose ${socket.alpnProtocol || 'no protocol'} over h2`);
    }
    socket.setKeepAlive(true, tcpKeepAliveDelayMs);
    const session = http2().connect(server.origin, { createConnection: () => socket });
    const entry: Entry = { session, used: false, active: 0 };
    const drop = () => {
      if (this.current === entry) this.current = undefined;
      clearInterval(check);
    };
    session.on('error', (err) => {
      this.opts.logger.debug('HTTP/2 connection failed', { server: server.host, err: String(err) });
      drop();
    });
    session.on('goaway', drop);
    session.on('close', drop);
    // The health check reads the socket's byte count: any frame read (a response, a watch
    // event, a ping's ack) proves the link alive.
    let lastBytes = socket.bytesRead;
    let lastReadAt = performance.now();
    /** Armed while a ping is out: fires unless a byte is read (the ack is one) first. */
    let deadline: NodeJS.Timeout | undefined;
    const settle = () => {
      clearTimeout(deadline);
      deadline = undefined;
    };
    const { readIdleTimeoutMs, pingTimeoutMs } = this.opts;
    const check = setInterval(
      () => {
        const bytes = socket.bytesRead;
        const now = performance.now();
        if (bytes !== lastBytes) {
          lastBytes = bytes;
          lastReadAt = now;
          settle();
          return;
        }
        if (deadline || now - lastReadAt < readIdleTimeoutMs || session.destroyed) return;
        deadline = setTimeout(() => {
          drop();
          session.destroy(
            new Error(
              `no frame read for ${readIdleTimeoutMs} ms and no ping answer within ${pingTimeoutMs} ms (connection taken for dead)`,
            ),
          );
        }, pingTimeoutMs);
        deadline.unref();
        // Only an answer (or any byte read) clears the deadline. Node cancels, without sending,
        // a ping on a session that is closing (after GOAWAY, retire(), a gentle close): that
        // proves nothing, and the streams still open on it must not hang on a dead link.
        session.ping((err) => {
          if (err) return;
          settle();
          lastReadAt = performance.now();
        });
      },
      Math.max(10, Math.min(readIdleTimeoutMs, pingTimeoutMs) / 3),
    );
    check.unref();
    session.unref();
    if (this.closed) {
      session.destroy();
      throw new Error('connection closed');
    }
    this.current = entry;
    return entry;
  }
}

interface Entry {
  session: ClientHttp2Session;
  /** Carried a request already. */
  used: boolean;
  /** Open streams. */
  active: number;
  /** Taken out of use by suspect(); its ping's verdict pending or given. */
  suspected?: boolean;
}
