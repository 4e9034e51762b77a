/**
 * The real KubeClient: JSON over HTTPS to the apiserver, throttled, measured, with typed
 * errors and watch streams that end cleanly on abort and fail loudly on bad data.
 */
import type { Readable } from 'node:stream';
import type { KubeConfigLike } from './kubeconfig.js';
import type { KubeList, KubeObject } from '../api/index.js';
import type { Clock } from '../clock/index.js';
import { nopLogger, type Logger } from '../log/index.js';
import type { Registry } from '../metrics/index.js';
import { Connection, type TokenSource } from './connection.js';
import { NetworkError, WatchDecodeError } from './errors.js';
import { LineSplitter } from './lines.js';
import { newClientMetrics } from './metrics.js';
import { defaultBurst, defaultQPS, newThrottle, type Throttle } from './throttle.js';
import { Transport, type HttpMethod, type RequestSpec } from './transport.js';
import {
  qualifiedResource,
  type DeleteOptions,
  type KubeClient,
  type GetOptions,
  type ListOptions,
  type PatchOptions,
  type ResourceClient,
  type ResourceRef,
  type WatchEvent,
  type WatchEventType,
  type WatchOptions,
  type WriteOptions,
} from './types.js';
import {
  deleteBody,
  listQuery,
  metadataListAccept,
  metadataWatchAccept,
  patchContentTypes,
  resourcePath,
  watchQuery,
  withQuery,
  writeQuery,
} from './url.js';

export interface KubeClientOptions {
  /** Steady requests per second; <= 0 turns throttling off. Default 20 (kube-controller-manager). */
  qps?: number;
  /** Requests allowed at once above the steady rate. Default 30 (kube-controller-manager). */
  burst?: number;
  /** Where rest_client_* metrics go; none when omitted. */
  registry?: Registry;
  logger?: Logger;
  userAgent?: string;
  /** Field manager for server-side apply when a call names none. Default: the user agent's product. */
  fieldManager?: string;
  /** Extra headers on every request, e.g. { 'Impersonate-User': 'jane' }. */
  headers?: Record<string, string>;
  /** A bearer token that replaces the kubeconfig user's credentials (see ServiceAccountTokenSource). */
  tokenSource?: TokenSource;
  clock?: Clock;
  /** Retries after 429 / Retry-After. Default 10 (client-go). */
  maxRetries?: number;
  /** Deadline for a non-watch request. Default 60 s. */
  requestTimeoutMs?: number;
  /** A non-watch request whose socket is silent this long fails (half-open). Default 30 s. */
  requestIdleTimeoutMs?: number;
  /** Pooled sockets idle this long are closed. Default 15 s. */
  idleSocketTimeoutMs?: number;
}

export class RestKubeClient implements KubeClient {
  readonly transport: Transport;
  readonly fieldManager: string;
  private readonly throttle: Throttle;
  private readonly conn: Connection;

  constructor(kc: KubeConfigLike, opts: KubeClientOptions = {}) {
    const userAgent = opts.userAgent ?? 'ts-kcm';
    this.conn = new Connection(kc, {
      clock: opts.clock,
      userAgent,
      headers: opts.headers,
      tokenSource: opts.tokenSource,
      logger: opts.logger,
      idleSocketTimeoutMs: opts.idleSocketTimeoutMs,
    });
    this.throttle = newThrottle(opts.qps ?? defaultQPS, opts.burst ?? defaultBurst);
    this.transport = new Transport(this.conn, {
      throttle: this.throttle,
      metrics: newClientMetrics(opts.registry),
      clock: opts.clock,
      logger: opts.logger ?? nopLogger(),
      maxRetries: opts.maxRetries,
      requestTimeoutMs: opts.requestTimeoutMs,
      requestIdleTimeoutMs: opts.requestIdleTimeoutMs,
    });
    this.fieldManager = opts.fieldManager ?? userAgent.split('/')[0];
  }

  /** The apiserver URL this client talks to. */
  get server(): string {
    return this.conn.server.toString();
  }

  resource<T extends KubeObject = KubeObject>(ref: ResourceRef<T>): ResourceClient<T> {
    return new RestResourceClient<T>(this, ref);
  }

  async serverVersion(): Promise<{ gitVersion: string; major: string; minor: string }> {
    const res = await this.transport.request({
      method: 'GET',
      path: '/version',
      verb: 'get',
      resource: 'version',
    });
    return JSON.parse(res.body) as { gitVersion: string; major: string; minor: string };
  }

  async requestRaw(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    const spec: RequestSpec = {
      method: method.toUpperCase() as HttpMethod,
      path,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      accept: '*/*',
      verb: method.toLowerCase(),
      resource: path,
    };
    const res = await this.transport.request(spec, true);
    return { status: res.status, body: res.body };
  }

  /** Close kept-alive connections and stop the throttle's timer. */
  async close(): Promise<void> {
    await this.throttle.close();
    this.conn.close();
  }
}

export function createKubeClient(kc: KubeConfigLike, opts: KubeClientOptions = {}): RestKubeClient {
  return new RestKubeClient(kc, opts);
}

const watchEventTypes = new Set<WatchEventType>(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** Parse one line of a watch stream; anything that is not a watch event is an error. */
export function parseWatchLine<T>(line: string, url: string): WatchEvent<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new WatchDecodeError(url, line, err instanceof Error ? err.message : String(err));
  }
  const ev = parsed as { type?: unknown; object?: unknown };
  if (
    typeof ev !== 'object' ||
    ev === null ||
    !watchEventTypes.has(ev.type as WatchEventType) ||
    typeof ev.object !== 'object' ||
    ev.object === null
  ) {
    throw new WatchDecodeError(url, line, 'not a watch event (need "type" and "object")');
  }
  return { type: ev.type as WatchEventType, object: ev.object as T };
}

class RestResourceClient<T extends KubeObject> implements ResourceClient<T> {
  private readonly what: string;

  constructor(
    private readonly client: RestKubeClient,
    readonly ref: ResourceRef,
  ) {
    this.what = qualifiedResource(ref);
  }

  private path(namespace: string | undefined, name?: string, subresource?: string): string {
    if (this.ref.namespaced && name !== undefined && !namespace) {
      throw new Error(`${this.what} "${name}": a namespace is required for a namespaced resource`);
    }
    return resourcePath(this.ref, { namespace, name, subresource });
  }

  private async json<R>(spec: Omit<RequestSpec, 'resource'>): Promise<R> {
    const res = await this.client.transport.request({ ...spec, resource: this.what });
    try {
      return JSON.parse(res.body) as R;
    } catch (err) {
      throw new Error(
        `${spec.method} ${spec.path}: response ${res.status} is not JSON: ${err instanceof Error ? err.message : String(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  async get(name: string, namespace?: string, opts: GetOptions = {}): Promise<T> {
    return this.json<T>({
      method: 'GET',
      path: this.path(namespace, name),
      verb: 'get',
      signal: opts.signal,
    });
  }

  async list(opts: ListOptions = {}): Promise<KubeList<T>> {
    return this.json<KubeList<T>>({
      method: 'GET',
      path: withQuery(this.path(opts.namespace), listQuery(opts)),
      accept: opts.metadataOnly ? metadataListAccept : undefined,
      verb: 'list',
      signal: opts.signal,
    });
  }

  watch(opts: WatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent<T>> {
    return { [Symbol.asyncIterator]: () => this.watchStream(opts, signal) };
  }

  private async *watchStream(opts: WatchOptions, signal: AbortSignal): AsyncGenerator<WatchEvent<T>> {
    if (signal.aborted) return;
    const spec: RequestSpec = {
      method: 'GET',
      path: withQuery(this.path(opts.namespace), watchQuery(opts)),
      accept: opts.metadataOnly ? metadataWatchAccept : undefined,
      verb: 'watch',
      resource: this.what,
    };
    const url = this.client.transport.conn.url(spec.path).toString();
    let res: Readable;
    try {
      res = await this.client.transport.stream(spec, signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    const onAbort = () => res.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    res.setEncoding('utf8');
    const lines = new LineSplitter();
    try {
      for await (const chunk of res as AsyncIterable<string>) {
        for (const line of lines.push(chunk)) yield parseWatchLine<T>(line, url);
      }
      const last = lines.end();
      if (last) yield parseWatchLine<T>(last, url);
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof WatchDecodeError) throw err;
      throw new NetworkError('GET', url, err);
    } finally {
      signal.removeEventListener('abort', onAbort);
      res.destroy();
    }
  }

  async create(obj: T, opts: WriteOptions = {}): Promise<T> {
    const ns = opts.namespace ?? obj.metadata?.namespace;
    if (this.ref.namespaced && !ns)
      throw new Error(`${this.what}: a namespace is required to create a namespaced resource`);
    // POST to a subresource (serviceaccounts/x/token, pods/x/eviction) names the parent object.
    const path = opts.subresource
      ? this.path(ns, obj.metadata?.name ?? '', opts.subresource)
      : resourcePath(this.ref, { namespace: ns });
    return this.json<T>({
      method: 'POST',
      path: withQuery(path, writeQuery(opts)),
      body: JSON.stringify(obj),
      verb: 'create',
      signal: opts.signal,
    });
  }

  async update(obj: T, opts: WriteOptions = {}): Promise<T> {
    const ns = opts.namespace ?? obj.metadata?.namespace;
    const name = obj.metadata?.name ?? '';
    return this.json<T>({
      method: 'PUT',
      path: withQuery(this.path(ns, name, opts.subresource), writeQuery(opts)),
      body: JSON.stringify(obj),
      verb: 'update',
      signal: opts.signal,
    });
  }

  async patch(name: string, patch: unknown, opts: PatchOptions): Promise<T> {
    const fieldManager = opts.fieldManager ?? (opts.type === 'apply' ? this.client.fieldManager : undefined);
    // force is only meaningful (and only accepted) for apply patches.
    const force = opts.type === 'apply' ? opts.force : undefined;
    return this.json<T>({
      method: 'PATCH',
      path: withQuery(
        this.path(opts.namespace, name, opts.subresource),
        writeQuery({ fieldManager, dryRun: opts.dryRun, force }),
      ),
      body: typeof patch === 'string' ? patch : JSON.stringify(patch),
      contentType: patchContentTypes[opts.type],
      verb: 'patch',
      signal: opts.signal,
    });
  }

  async delete(name: string, opts: DeleteOptions = {}): Promise<void> {
    const body = deleteBody(opts);
    await this.client.transport.request({
      method: 'DELETE',
      path: this.path(opts.namespace, name),
      body: body && JSON.stringify(body),
      verb: 'delete',
      resource: this.what,
      signal: opts.signal,
    });
  }
}
