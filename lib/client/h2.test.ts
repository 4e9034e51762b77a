/**
 * HTTP/2 against a real Node HTTP/2 server on 127.0.0.1: requests and watches share one
 * session, a rotated client certificate gets a new session, REFUSED_STREAM and GOAWAY are
 * retried, an HTTP/1.1-only server is fallen back from, and the ping health check fails the
 * streams of a connection that went silent.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { KubeConfig } from '@kubernetes/client-node';
import { createKubeClient, type RestKubeClient } from './client.js';
import { Http2Link } from './h2.js';
import { Resources } from './types.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-kcm-h2-'));

function selfSigned(name: string, ...extra: string[]): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '1', ...extra,
  ], { stdio: 'ignore' }); // prettier-ignore
  return { cert, key };
}

let serving: { cert: string; key: string };
beforeAll(() => {
  serving = selfSigned('server', '-addext', 'subjectAltName=IP:127.0.0.1');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

/** An HTTP/2-only TLS server; counts sessions and records each request's method and path. */
async function h2Server(handler: Handler) {
  const seen: { method: string; path: string; cn: string; protocol: string }[] = [];
  const sessions: http2.ServerHttp2Session[] = [];
  const server = http2.createSecureServer({
    cert: fs.readFileSync(serving.cert),
    key: fs.readFileSync(serving.key),
    requestCert: true,
    rejectUnauthorized: false,
  });
  server.on('session', (s) => sessions.push(s));
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined); // a stream the test resets on purpose
    const peer = (stream.session?.socket as TLSSocket).getPeerCertificate();
    seen.push({
      method: String(headers[':method']),
      path: String(headers[':path']),
      cn: String(peer.subject?.CN ?? ''),
      protocol: (stream.session?.socket as TLSSocket).alpnProtocol || '',
    });
    handler(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    seen,
    sessions,
    async close() {
      for (const s of sessions) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A TCP relay to 127.0.0.1:port; stall() stops it reading both ways on the connections open so
 * far (a half-open link: nothing is lost, nothing arrives), later connections pass.
 */
async function stallableRelay(port: number) {
  const pipes: net.Socket[] = [];
  const server = net.createServer((down) => {
    const up = net.connect(port, '127.0.0.1');
    pipes.push(down, up);
    down.pipe(up).pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stall: () => pipes.splice(0).forEach((p) => p.pause()),
    close: () => server.close(),
  };
}

function kubeconfig(port: number, user: Record<string, string> = { token: 't' }): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'c', server: `https://127.0.0.1:${port}`, caFile: serving.cert, skipTLSVerify: false },
    ],
    users: [{ name: 'u', ...user }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

const json = (stream: http2.ServerHttp2Stream, body: unknown, status = 200) => {
  stream.respond({ ':status': status, 'content-type': 'application/json' });
  stream.end(JSON.stringify(body));
};
const list = (names: string[]) => ({
  metadata: { resourceVersion: '5' },
  items: names.map((name) => ({ metadata: { name } })),
});

let client: RestKubeClient | undefined;
afterEach(async () => {
  await client?.close();
  client = undefined;
});

describe('HTTP/2 transport', () => {
  it('carries requests and a watch on one session, headers lower-cased, and reads the watch', async () => {
    const auth: string[] = [];
    const srv = await h2Server((stream, headers) => {
      auth.push(String(headers.authorization));
      if (String(headers[':path']).includes('watch=true')) {
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'w1' } } }) + '\n');
        stream.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'w2' } } }) + '\n');
        stream.end();
        return;
      }
      json(stream, list(['a', 'b']));
    });
    try {
      client = createKubeClient(kubeconfig(srv.port), { qps: 0 });
      const nodes = client.resource(Resources.nodes);
      expect((await nodes.list()).items.map((n) => n.metadata.name)).toEqual(['a', 'b']);
      await Promise.all([nodes.list(), nodes.list(), nodes.list()]);
      const names: string[] = [];
      for await (const ev of nodes.watch({ resourceVersion: '5' }, new AbortController().signal))
        names.push(String(ev.object.metadata.name));
      expect(names).toEqual(['w1', 'w2']);
      expect(srv.sessions).toHaveLength(1);
      expect(srv.seen.every((s) => s.protocol === 'h2')).toBe(true);
      expect(auth.every((a) => a === 'Bearer t')).toBe(true);
    } finally {
      await srv.close();
    }
  });

  it('an error status becomes the same ApiError as on HTTP/1.1', async () => {
    const srv = await h2Server((stream) =>
      json(
        stream,
        { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: 'nodes "x" not found' },
        404,
      ),
    );
    try {
      client = createKubeClient(kubeconfig(srv.port), { qps: 0 });
      await expect(client.resource(Resources.nodes).get('x')).rejects.toMatchObject({ code: 404 });
    } finally {
      await srv.close();
    }
  });

  it('a REFUSED_STREAM (not processed) is sent again, even a POST', async () => {
    let refused = 0;
    const srv = await h2Server((stream) => {
      if (refused++ === 0) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      json(stream, { metadata: { name: 'made' } }, 201);
    });
    try {
      client = createKubeClient(kubeconfig(srv.port), { qps: 0 });
      const made = await client.resource(Resources.nodes).create({ metadata: { name: 'made' } });
      expect(made.metadata.name).toBe('made');
      expect(srv.seen.map((s) => s.method)).toEqual(['POST', 'POST']);
    } finally {
      await srv.close();
    }
  });

  it('after a GOAWAY the next request opens a new session', async () => {
    const srv = await h2Server((stream) => {
      json(stream, list(['a']));
      stream.session?.goaway();
    });
    try {
      client = createKubeClient(kubeconfig(srv.port), { qps: 0 });
      const nodes = client.resource(Resources.nodes);
      await nodes.list();
      await new Promise((r) => setTimeout(r, 50)); // the GOAWAY frame arrives
      await nodes.list();
      expect(srv.sessions.length).toBe(2);
    } finally {
      await srv.close();
    }
  });

  it('a client certificate rotated on disk is presented on a new session', async () => {
    const first = selfSigned('first');
    const second = selfSigned('second');
    const certFile = path.join(dir, 'client.crt');
    const keyFile = path.join(dir, 'client.key');
    fs.copyFileSync(first.cert, certFile);
    fs.copyFileSync(first.key, keyFile);
    const srv = await h2Server((stream) => json(stream, list(['x'])));
    try {
      client = createKubeClient(kubeconfig(srv.port, { certFile, keyFile }), { qps: 0 });
      const nodes = client.resource(Resources.nodes);
      await nodes.list();
      await nodes.list();
      fs.copyFileSync(second.cert, certFile);
      fs.copyFileSync(second.key, keyFile);
      await nodes.list();
      expect(srv.seen.map((s) => s.cn)).toEqual(['first', 'first', 'second']);
      expect(srv.sessions).toHaveLength(2);
    } finally {
      await srv.close();
    }
  });

  it('falls back to HTTP/1.1 when the server does not choose h2, and stays there', async () => {
    let tlsConnections = 0;
    const server = https.createServer(
      { cert: fs.readFileSync(serving.cert), key: fs.readFileSync(serving.key) },
      (req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(list([`http/${req.httpVersion}`])));
      },
    );
    server.on('secureConnection', () => tlsConnections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      client = createKubeClient(kubeconfig((server.address() as AddressInfo).port), { qps: 0 });
      const nodes = client.resource(Resources.nodes);
      expect((await nodes.list()).items[0]!.metadata.name).toBe('http/1.1');
      const afterFirst = tlsConnections;
      expect((await nodes.list()).items[0]!.metadata.name).toBe('http/1.1');
      // No second attempt at h2: the agent's kept-alive socket carries the next request.
      expect(tlsConnections).toBe(afterFirst);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

/** How a stream ended: its error, or 'closed, code N' when it closed without one. */
function streamFailure(stream: http2.ClientHttp2Stream): Promise<string> {
  return new Promise((resolve) => {
    stream.on('error', (e) => resolve(String(e)));
    stream.on('close', () => resolve(`closed, code ${stream.rstCode}`));
  });
}

describe('HTTP/2 health check', () => {
  it('a server that accepts the TCP connection but never answers the handshake fails the request, and the next one dials again', async () => {
    const sockets: net.Socket[] = [];
    const mute = net.createServer((sock) => sockets.push(sock)); // reads nothing, writes nothing
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    const link = new Http2Link({
      server: new URL(`https://127.0.0.1:${(mute.address() as AddressInfo).port}`),
      tls: { ca: fs.readFileSync(serving.cert) },
      handshakeTimeoutMs: 200,
    });
    try {
      await expect(link.request({ ':path': '/x' }, { endStream: true })).rejects.toThrow(
        /no TLS handshake with 127\.0\.0\.1:\d+ within 200 ms/,
      );
      await expect(link.request({ ':path': '/x' }, { endStream: true })).rejects.toThrow(/no TLS handshake/);
      expect(sockets).toHaveLength(2);
    } finally {
      link.close();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => mute.close(resolve));
    }
  });

  it('a connection that goes silent fails its open streams after read-idle + ping timeout', async () => {
    // The server answers the first request and holds the second open; then the relay in
    // between swallows every byte both ways (a half-open link), so the ping gets no answer.
    const srv = await h2Server((stream, headers) => {
      if (String(headers[':path']) === '/first') json(stream, {});
      else stream.respond({ ':status': 200 }); // and never ends
    });
    const relay = await stallableRelay(srv.port);
    const link = new Http2Link({
      server: new URL(`https://127.0.0.1:${relay.port}`),
      tls: { ca: fs.readFileSync(serving.cert) },
      readIdleTimeoutMs: 150,
      pingTimeoutMs: 150,
    });
    try {
      const first = await link.request({ ':path': '/first' }, { endStream: true });
      first.stream.resume();
      await new Promise((r) => first.stream.on('close', r));
      const held = await link.request({ ':path': '/held' }, { endStream: true });
      expect(held.reused).toBe(true);
      await new Promise((r) => held.stream.on('response', r));
      relay.stall();
      const err = await new Promise<Error>((resolve) => {
        held.stream.on('error', resolve);
        held.stream.on('close', () => resolve(new Error(`closed, code ${held.stream.rstCode}`)));
        held.stream.resume();
      });
      expect(held.stream.destroyed).toBe(true);
      expect(String(err)).toMatch(/connection taken for dead|closed/);
      // The dead session is dropped: the next request dials again.
      const again = await link.request({ ':path': '/first' }, { endStream: true });
      expect(again.reused).toBe(false);
      again.stream.resume();
    } finally {
      link.close();
      relay.close();
      await srv.close();
    }
  });
  it('a retired session (closing: Node sends no ping on it) whose link goes silent still fails its open streams', async () => {
    const srv = await h2Server((stream) => stream.respond({ ':status': 200 })); // never ends
    const relay = await stallableRelay(srv.port);
    const link = new Http2Link({
      server: new URL(`https://127.0.0.1:${relay.port}`),
      tls: { ca: fs.readFileSync(serving.cert) },
      readIdleTimeoutMs: 150,
      pingTimeoutMs: 150,
    });
    try {
      const held = await link.request({ ':path': '/held' }, { endStream: true });
      await new Promise((r) => held.stream.on('response', r));
      held.stream.resume();
      link.retire(); // e.g. new TLS material: no new stream here, the open one may finish
      relay.stall();
      const err = await streamFailure(held.stream);
      expect(err).toMatch(/connection taken for dead|closed/);
    } finally {
      link.close();
      relay.close();
      await srv.close();
    }
  });

  it("a stream's guard that suspects its connection sends the next request on a new session and fails the silent one after the ping timeout", async () => {
    const srv = await h2Server((stream, headers) => {
      if (String(headers[':path']) === '/first') json(stream, {});
      else stream.respond({ ':status': 200 }); // and never ends
    });
    const relay = await stallableRelay(srv.port);
    const link = new Http2Link({
      server: new URL(`https://127.0.0.1:${relay.port}`),
      tls: { ca: fs.readFileSync(serving.cert) },
      readIdleTimeoutMs: 60_000, // the health check stays out of this test
      pingTimeoutMs: 300,
    });
    try {
      const held = await link.request({ ':path': '/held' }, { endStream: true });
      await new Promise((r) => held.stream.on('response', r));
      held.stream.resume();
      relay.stall(); // the first connection goes silent
      const failed = streamFailure(held.stream);
      const suspectedAt = performance.now();
      held.suspect('watch still open 5s after it should have ended');
      // At once, not after the ping timeout: a new session, over a new connection.
      const again = await link.request({ ':path': '/first' }, { endStream: true });
      expect(again.reused).toBe(false);
      again.stream.resume();
      await new Promise((r) => again.stream.on('close', r));
      expect(performance.now() - suspectedAt).toBeLessThan(300);
      expect(held.stream.destroyed).toBe(false);
      // The silent one is failed once its ping goes unanswered.
      expect(await failed).toMatch(/no ping answer within 300 ms|closed/);
      expect(performance.now() - suspectedAt).toBeGreaterThanOrEqual(290);
      expect(srv.sessions.length).toBe(2);
    } finally {
      link.close();
      relay.close();
      await srv.close();
    }
  });

  it('a suspected connection that answers the ping is closed gently: its open streams finish', async () => {
    let release: (() => void) | undefined;
    const srv = await h2Server((stream, headers) => {
      if (String(headers[':path']) === '/first') json(stream, {});
      else {
        stream.respond({ ':status': 200 });
        release = () => stream.end('done');
      }
    });
    const link = new Http2Link({
      server: new URL(`https://127.0.0.1:${srv.port}`),
      tls: { ca: fs.readFileSync(serving.cert) },
      pingTimeoutMs: 5_000,
    });
    try {
      const held = await link.request({ ':path': '/held' }, { endStream: true });
      await new Promise((r) => held.stream.on('response', r));
      let body = '';
      held.stream.on('data', (d: Buffer) => (body += d.toString()));
      const ended = new Promise((r) => held.stream.on('end', r));
      held.suspect('no byte from the apiserver for 30000 ms');
      const again = await link.request({ ':path': '/first' }, { endStream: true });
      expect(again.reused).toBe(false);
      again.stream.resume();
      // The ping is answered: the old session is closing, not destroyed; the held stream lives.
      await new Promise((r) => setTimeout(r, 100));
      expect(held.stream.destroyed).toBe(false);
      release!();
      await ended;
      expect(body).toBe('done');
      expect(srv.sessions.length).toBe(2);
    } finally {
      link.close();
      await srv.close();
    }
  });
  it("a watch aborted for a suspect connection (the reflector's silence guards) moves the client to a new session", async () => {
    const srv = await h2Server((stream, headers) => {
      if (String(headers[':path']).includes('watch=true')) {
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        return; // and never ends: the server "missed" its timeoutSeconds
      }
      json(stream, list(['a']));
    });
    try {
      client = createKubeClient(kubeconfig(srv.port), { qps: 0 });
      const nodes = client.resource(Resources.nodes);
      await nodes.list();
      const ac = new AbortController();
      const watching = (async () => {
        for await (const ev of nodes.watch({ resourceVersion: '5' }, ac.signal)) void ev;
      })();
      await new Promise((r) => setTimeout(r, 100));
      ac.abort(
        Object.assign(new Error('watch still open 5s after it should have ended'), {
          connectionSuspect: true,
        }),
      );
      await watching.catch(() => undefined);
      await nodes.list();
      expect(srv.sessions).toHaveLength(2);
      // A plain abort (shutdown, a resync) leaves the session alone.
      const plain = new AbortController();
      const watching2 = (async () => {
        for await (const ev of nodes.watch({ resourceVersion: '5' }, plain.signal)) void ev;
      })();
      await new Promise((r) => setTimeout(r, 100));
      plain.abort();
      await watching2.catch(() => undefined);
      await nodes.list();
      expect(srv.sessions).toHaveLength(2);
    } finally {
      await srv.close();
    }
  });
});
