/**
 * The REST client against a scripted HTTP server on 127.0.0.1: what goes on the wire, how
 * answers become results and errors. No real apiserver (that is test/integration/client.test.ts).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { KubeConfig } from '@kubernetes/client-node';
import type { ServiceCIDR } from '../api/index.js';
import { newRegistry } from '../metrics/index.js';
import { createKubeClient, type KubeClientOptions, type RestKubeClient } from './client.js';
import {
  ApiError,
  isForbidden,
  isNotFound,
  isTooManyRequests,
  NetworkError,
  WatchDecodeError,
} from './errors.js';
import { applyPatch, jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { Resources, type WatchEvent } from './types.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Handler = (req: Seen, res: http.ServerResponse) => void;

let server: http.Server;
let port = 0;
let handler: Handler = (_req, res) => res.end('{}');
const seen: Seen[] = [];
const clients: RestKubeClient[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(s);
      handler(s, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterEach(async () => {
  seen.length = 0;
  for (const c of clients.splice(0)) await c.close();
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

// client-node refuses plain http unless skipTLSVerify is set.
function kubeConfig(user: Record<string, unknown> = { name: 'u', token: 'secret' }): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [user],
    contexts: [{ name: 'ctx', cluster: 'c', user: user.name }],
    currentContext: 'ctx',
  });
  return kc;
}

function client(opts: KubeClientOptions = {}, kc = kubeConfig()): RestKubeClient {
  const c = createKubeClient(kc, { qps: 0, ...opts });
  clients.push(c);
  return c;
}

function json(
  res: http.ServerResponse,
  code: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(code, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const status = (code: number, reason: string, message: string) => ({
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  code,
  reason,
  message,
});

describe('RestKubeClient requests', () => {
  it('builds URLs, headers and bodies for each verb', async () => {
    handler = (req, res) => json(res, 200, { metadata: { name: 'x' } });
    const c = client({ userAgent: 'ts-kcm/test' });
    const cms = c.resource(Resources.configmaps);
    await cms.get('a', 'ns');
    await cms.list({ namespace: 'ns', labelSelector: 'app=x', limit: 2 });
    await cms.list({ metadataOnly: true });
    await cms.create({ metadata: { name: 'b', namespace: 'ns' } }, { fieldManager: 'm', dryRun: true });
    await cms.update({ metadata: { name: 'b', namespace: 'ns', resourceVersion: '7' } });
    await mergePatch(cms, 'b', { data: { k: 'v' } }, { namespace: 'ns' });
    await strategicMergePatch(
      c.resource(Resources.pods),
      'p',
      { metadata: { finalizers: ['f'] } },
      { namespace: 'ns', subresource: 'status' },
    );
    await jsonPatch(cms, 'b', [{ op: 'remove', path: '/data/k' }], { namespace: 'ns' });
    await applyPatch(
      c.resource<ServiceCIDR>(Resources.serviceCIDRs),
      { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.0.0.0/24'] } },
      { fieldManager: 'svc', force: true },
    );
    await cms.delete('b', { namespace: 'ns', preconditions: { uid: 'u1' } });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /api/v1/namespaces/ns/configmaps/a',
      'GET /api/v1/namespaces/ns/configmaps?labelSelector=app%3Dx&limit=2',
      'GET /api/v1/configmaps',
      'POST /api/v1/namespaces/ns/configmaps?fieldManager=m&dryRun=All',
      'PUT /api/v1/namespaces/ns/configmaps/b',
      'PATCH /api/v1/namespaces/ns/configmaps/b',
      'PATCH /api/v1/namespaces/ns/pods/p/status',
      'PATCH /api/v1/namespaces/ns/configmaps/b',
      'PATCH /apis/networking.k8s.io/v1/servicecidrs/kubernetes?fieldManager=svc&force=true',
      'DELETE /api/v1/namespaces/ns/configmaps/b',
    ]);
    expect(seen.map((s) => s.headers['content-type'])).toEqual([
      undefined,
      undefined,
      undefined,
      'application/json',
      'application/json',
      'application/merge-patch+json',
      'application/strategic-merge-patch+json',
      'application/json-patch+json',
      'application/apply-patch+yaml',
      'application/json',
    ]);
    expect(seen[0].headers).toMatchObject({
      authorization: 'Bearer secret',
      'user-agent': 'ts-kcm/test',
      accept: 'application/json',
    });
    expect(seen[2].headers.accept).toBe(
      'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json',
    );
    expect(JSON.parse(seen[8].body)).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'ServiceCIDR',
      metadata: { name: 'kubernetes' },
      spec: { cidrs: ['10.0.0.0/24'] },
    });
    expect(JSON.parse(seen[9].body)).toEqual({
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      preconditions: { uid: 'u1' },
    });
  });

  it('refuses a namespaced name without a namespace before sending anything', async () => {
    const c = client();
    await expect(c.resource(Resources.pods).get('p')).rejects.toThrow(
      'pods "p": a namespace is required for a namespaced resource',
    );
    expect(seen).toEqual([]);
  });

  it('honours `signal` on every verb: an aborted request is not sent, one in flight is cancelled', async () => {
    const held: http.ServerResponse[] = [];
    handler = (_req, res) => void held.push(res); // never answers
    const cms = client().resource(Resources.configmaps);
    const obj = { metadata: { name: 'a', namespace: 'ns' } };
    const calls = (signal: AbortSignal) => [
      cms.get('a', 'ns', { signal }),
      cms.list({ namespace: 'ns', signal }),
      cms.create(obj, { signal }),
      cms.update(obj, { signal }),
      cms.patch('a', {}, { type: 'merge', namespace: 'ns', signal }),
      cms.delete('a', { namespace: 'ns', signal }),
    ];
    const gone = new Error('lease lost');
    for (const p of calls(AbortSignal.abort(gone))) await expect(p).rejects.toBe(gone);
    expect(seen).toEqual([]);
    const ac = new AbortController();
    const inFlight = calls(ac.signal).map((p) =>
      p.then(
        () => 'answered',
        (err: unknown) => err,
      ),
    );
    while (seen.length < 6) await new Promise((r) => setTimeout(r, 5));
    ac.abort(gone);
    expect(await Promise.all(inFlight)).toEqual(Array(6).fill(gone));
    for (const res of held) res.destroy();
    handler = (_req, res) => res.end('{}');
  });

  it('maps error responses to ApiError', async () => {
    handler = (req, res) => {
      if (req.url.includes('missing'))
        return json(res, 404, status(404, 'NotFound', 'configmaps "missing" not found'));
      if (req.url.includes('plain')) {
        res.writeHead(403);
        return res.end('nope');
      }
      json(
        res,
        403,
        status(
          403,
          'Forbidden',
          'servicecidrs.networking.k8s.io is forbidden: User "x" cannot list resource "servicecidrs"',
        ),
      );
    };
    const c = client();
    const nf = await c
      .resource(Resources.configmaps)
      .get('missing', 'ns')
      .catch((e: unknown) => e);
    expect(isNotFound(nf)).toBe(true);
    expect((nf as ApiError).message).toBe('configmaps "missing" not found');
    const fb = await c
      .resource(Resources.serviceCIDRs)
      .list()
      .catch((e: unknown) => e);
    expect(isForbidden(fb)).toBe(true);
    expect((fb as ApiError).message).toBe(
      'servicecidrs.networking.k8s.io is forbidden: User "x" cannot list resource "servicecidrs"',
    );
    const plain = await c
      .resource(Resources.serviceCIDRs)
      .get('plain')
      .catch((e: unknown) => e);
    expect((plain as ApiError).message).toBe('forbidden: cannot get servicecidrs.networking.k8s.io: nope');
    expect((plain as ApiError).reason).toBe('Forbidden');
  });

  it('retries 429 after Retry-After, counts every attempt, and gives up after maxRetries', async () => {
    let n = 0;
    handler = (req, res) => {
      n++;
      if (req.url.includes('always') || n === 1)
        return json(res, 429, status(429, 'TooManyRequests', 'slow down'), { 'Retry-After': '0' });
      json(res, 200, { metadata: { name: 'ok' } });
    };
    const registry = newRegistry();
    const c = client({ registry, maxRetries: 3 });
    await expect(c.resource(Resources.configmaps).get('a', 'ns')).resolves.toEqual({
      metadata: { name: 'ok' },
    });
    expect(n).toBe(2);
    const err = await c
      .resource(Resources.configmaps)
      .get('always', 'ns')
      .catch((e: unknown) => e);
    expect(isTooManyRequests(err)).toBe(true);
    expect((err as ApiError).retryAfterSeconds).toBe(0);
    expect(n).toBe(6); // 1 + 3 retries
    const text = await registry.metrics();
    expect(text).toContain(`rest_client_requests_total{code="429",method="GET",host="127.0.0.1:${port}"} 5`);
    expect(text).toContain(`rest_client_requests_total{code="200",method="GET",host="127.0.0.1:${port}"} 1`);
    expect(text).toContain(
      `rest_client_request_duration_seconds_count{verb="GET",host="127.0.0.1:${port}"} 6`,
    );
    expect(text).toContain(
      `rest_client_rate_limiter_duration_seconds_count{verb="GET",host="127.0.0.1:${port}"} 6`,
    );
  });

  it('retries a 5xx only when the server sent Retry-After', async () => {
    let n = 0;
    handler = (req, res) => {
      n++;
      if (req.url.includes('hint') && n === 1)
        return json(res, 503, status(503, 'ServiceUnavailable', 'starting'), { 'Retry-After': '0' });
      if (req.url.includes('hint')) return json(res, 200, {});
      json(res, 500, status(500, 'InternalError', 'boom'));
    };
    const c = client();
    await c.resource(Resources.nodes).get('hint');
    expect(n).toBe(2);
    n = 0;
    const err = await c
      .resource(Resources.nodes)
      .get('plain')
      .catch((e: unknown) => e);
    expect(n).toBe(1);
    expect((err as ApiError).reason).toBe('InternalError');
    expect((err as ApiError).message).toBe('boom');
  });

  it('two clients share one registry without a duplicate-metric error', () => {
    const registry = newRegistry();
    client({ registry });
    expect(() => client({ registry })).not.toThrow();
  });

  it('fails a request whose socket goes silent (half-open) after requestIdleTimeoutMs, then works on a fresh socket', async () => {
    let silent = true;
    handler = (_req, res) => {
      if (!silent) json(res, 200, { metadata: {}, items: [] });
      // else: swallow the request, as a stalled link does — no answer, no FIN, no RST
    };
    const c = client({ requestIdleTimeoutMs: 300, requestTimeoutMs: 60_000 });
    const err = await c
      .resource(Resources.nodes)
      .list()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as Error).message).toMatch(/no byte from the apiserver for 300 ms/);
    silent = false;
    await expect(c.resource(Resources.nodes).list()).resolves.toEqual({ metadata: {}, items: [] });
  }, 10_000);

  it('closes a pooled socket idle for idleSocketTimeoutMs, so no request is sent on a long-idle link', async () => {
    const keepAlive = server.keepAliveTimeout;
    server.keepAliveTimeout = 60_000; // the server would keep it: the client must close it
    const closed: string[] = [];
    const onConnection = (socket: import('node:net').Socket) =>
      socket.on('close', () => closed.push(String(socket.remotePort)));
    server.on('connection', onConnection);
    try {
      handler = (_req, res) => json(res, 200, { metadata: {}, items: [] });
      const c = client({ idleSocketTimeoutMs: 200 });
      await c.resource(Resources.nodes).list();
      const deadline = Date.now() + 5_000;
      while (closed.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(closed.length).toBe(1);
    } finally {
      server.off('connection', onConnection);
      server.keepAliveTimeout = keepAlive;
    }
  }, 10_000);

  it('wraps connection failures in NetworkError', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    const err = await client({}, kc)
      .resource(Resources.nodes)
      .list()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as NetworkError).errno).toBe('ECONNREFUSED');
    expect((err as Error).message).toMatch(/^GET http:\/\/127\.0\.0\.1:1\/api\/v1\/nodes: /);
  });

  it('re-reads a rotated service-account token after a 401', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-kcm-token-'));
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, 'old\n');
    let accepted = 'Bearer old';
    handler = (req, res) =>
      req.headers.authorization === accepted
        ? json(res, 200, {})
        : json(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const c = client(
      {},
      kubeConfig({ name: 'sa', authProvider: { name: 'tokenFile', config: { tokenFile } } }),
    );
    await c.resource(Resources.nodes).list();
    fs.writeFileSync(tokenFile, 'new');
    accepted = 'Bearer new';
    await c.resource(Resources.nodes).list();
    expect(seen.map((s) => s.headers.authorization)).toEqual(['Bearer old', 'Bearer old', 'Bearer new']);
    fs.rmSync(dir, { recursive: true });
  });

  it('asks for gzip on lists and decompresses a gzipped answer; watches do not ask', async () => {
    const list = {
      kind: 'NodeList',
      metadata: { resourceVersion: '7' },
      items: [{ metadata: { name: 'n' } }],
    };
    handler = (req, res) => {
      if (req.url.includes('watch=true')) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
      res.end(zlib.gzipSync(JSON.stringify(list)));
    };
    const c = client();
    expect(await c.resource(Resources.nodes).list()).toEqual(list);
    for await (const e of c.resource(Resources.nodes).watch({}, new AbortController().signal)) void e;
    expect(seen.map((s) => s.headers['accept-encoding'])).toEqual(['gzip', undefined]);
  });

  it('runs an exec plugin once for concurrent requests, and again after a 401', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-kcm-exec-'));
    const plugin = path.join(dir, 'plugin.mjs');
    // Each run hands out the next token: tok-1, tok-2, ...
    fs.writeFileSync(
      plugin,
      [
        "import fs from 'node:fs';",
        `const f = ${JSON.stringify(path.join(dir, 'runs'))};`,
        "const n = (fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8')) : 0) + 1;",
        'fs.writeFileSync(f, String(n));',
        'const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO);',
        "console.log(JSON.stringify({ apiVersion: info.apiVersion, kind: 'ExecCredential', status: { token: 'tok-' + n } }));",
      ].join('\n'),
    );
    let accepted = 'Bearer tok-1';
    handler = (req, res) =>
      req.headers.authorization === accepted
        ? json(res, 200, { metadata: {}, items: [] })
        : json(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const c = client(
      {},
      kubeConfig({
        name: 'exec',
        exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [plugin] },
      }),
    );
    const nodes = c.resource(Resources.nodes);
    await Promise.all([nodes.list(), nodes.list(), nodes.list(), nodes.list()]);
    expect(fs.readFileSync(path.join(dir, 'runs'), 'utf8')).toBe('1');
    accepted = 'Bearer tok-2'; // the server revoked tok-1
    await nodes.list();
    expect(fs.readFileSync(path.join(dir, 'runs'), 'utf8')).toBe('2');
    expect(seen.slice(-2).map((s) => s.headers.authorization)).toEqual(['Bearer tok-1', 'Bearer tok-2']);
    fs.rmSync(dir, { recursive: true });
  });

  it('never puts what an exec plugin printed into an error', async () => {
    const c = client(
      {},
      kubeConfig({
        name: 'exec',
        exec: { command: process.execPath, args: ['-e', 'console.log("{ secret-token-xyz")'] },
      }),
    );
    const err = (await c
      .resource(Resources.nodes)
      .list()
      .catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/output is not JSON/);
    expect(err.message).not.toContain('secret-token-xyz');
  });

  it('requestRaw returns any status without throwing', async () => {
    handler = (_req, res) => {
      res.writeHead(500);
      res.end('[-]etcd failed');
    };
    await expect(client().requestRaw('GET', '/readyz?verbose')).resolves.toEqual({
      status: 500,
      body: '[-]etcd failed',
    });
  });
});

describe('RestKubeClient watch', () => {
  const ev = (type: string, name: string) =>
    JSON.stringify({ type, object: { metadata: { name, resourceVersion: '1' } } });

  it('yields events split across chunks, then ends when the server closes', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const text = `${ev('ADDED', 'a')}\n${ev('MODIFIED', 'a')}\n${ev('DELETED', 'a')}`;
      res.write(text.slice(0, 10));
      setImmediate(() => {
        res.write(text.slice(10, 70));
        setImmediate(() => res.end(text.slice(70) + '\n'));
      });
    };
    const got: WatchEvent[] = [];
    for await (const e of client()
      .resource(Resources.configmaps)
      .watch(
        { namespace: 'ns', resourceVersion: '5', allowWatchBookmarks: true, metadataOnly: true },
        new AbortController().signal,
      ))
      got.push(e);
    expect(got.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'ADDED a',
      'MODIFIED a',
      'DELETED a',
    ]);
    expect(seen[0].url).toBe(
      '/api/v1/namespaces/ns/configmaps?watch=true&resourceVersion=5&allowWatchBookmarks=true',
    );
    expect(seen[0].headers.accept).toBe(
      'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json',
    );
  });

  it('throws on a malformed line instead of skipping it', async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      res.end(`${ev('ADDED', 'a')}\n{not json\n${ev('ADDED', 'b')}\n`);
    };
    const got: string[] = [];
    const run = async () => {
      for await (const e of client().resource(Resources.pods).watch({}, new AbortController().signal))
        got.push(e.object.metadata.name ?? '');
    };
    const err = await run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WatchDecodeError);
    expect((err as Error).message).toMatch(
      /^malformed watch event from http:\/\/127\.0\.0\.1:\d+\/api\/v1\/pods\?watch=true: .*: \{not json$/,
    );
    expect(got).toEqual(['a']);
  });

  it('ends quietly when the signal aborts mid-stream', async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      res.write(ev('ADDED', 'a') + '\n'); // and never ends
    };
    const ac = new AbortController();
    const got: string[] = [];
    for await (const e of client().resource(Resources.pods).watch({}, ac.signal)) {
      got.push(e.object.metadata.name ?? '');
      ac.abort();
    }
    expect(got).toEqual(['a']);
  });

  it('surfaces a 410 on the watch request as ApiError', async () => {
    handler = (_req, res) => json(res, 410, status(410, 'Expired', 'too old resource version: 1 (5)'));
    const err = await (async () => {
      for await (const _ of client()
        .resource(Resources.pods)
        .watch({ resourceVersion: '1' }, new AbortController().signal))
        void _;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(410);
    expect((err as ApiError).message).toBe('too old resource version: 1 (5)');
  });
});
