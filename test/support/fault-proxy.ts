/**
 * A fault-injecting TCP proxy for tests: sits between ts-kcm and kube-apiserver on 127.0.0.1
 * and forwards bytes both ways (TLS passes through untouched), while a test asks it to
 * misbehave the ways real networks do:
 *
 * - cutAll(): destroy every open connection (watch cuts);
 * - cutEvery(min, max): keep cutting at random intervals in [min, max) ms;
 * - resetMidStream(): the next chunk from the apiserver on each open connection is forwarded
 *   only in part, then the connection is reset (a JSON line cut in the middle);
 * - stall(ms): the connections open now stop forwarding silently — no FIN, no RST, bytes are
 *   swallowed — as a half-open link does; they resume after `ms` if still open;
 * - latency(base, jitter): every chunk is delayed by base + random(jitter) ms, order kept;
 * - refuse(ms): new connections are reset at once for `ms`.
 *
 * It only listens on loopback, only connects to the one target it was given, and stops by
 * itself after `maxLifetimeMs`, so a test that forgets it cannot leave it running.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

export interface FaultProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Stop on its own after this long. Default 10 minutes. */
  maxLifetimeMs?: number;
}

export interface FaultProxyStats {
  connections: number;
  cuts: number;
  resets: number;
  refused: number;
  stalledConnections: number;
  bytesUp: number;
  bytesDown: number;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  stalledUntil: number;
  resetNextDown: boolean;
  /** Per-direction promise chains keep chunk order under added latency. */
  upChain: Promise<void>;
  downChain: Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export class FaultProxy {
  readonly stats: FaultProxyStats = {
    connections: 0,
    cuts: 0,
    resets: 0,
    refused: 0,
    stalledConnections: 0,
    bytesUp: 0,
    bytesDown: 0,
  };
  private readonly pairs = new Set<Pair>();
  private refuseUntil = 0;
  private latencyBaseMs = 0;
  private latencyJitterMs = 0;
  private cutTimer?: NodeJS.Timeout;
  private readonly lifetimeTimer: NodeJS.Timeout;
  private stopped = false;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    maxLifetimeMs: number,
  ) {
    this.lifetimeTimer = setTimeout(() => void this.stop(), maxLifetimeMs);
    this.lifetimeTimer.unref();
  }

  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    if (!LOOPBACK.test(opts.targetHost)) {
      throw new Error(`fault proxy: target ${opts.targetHost} is not a loopback address`);
    }
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as net.AddressInfo).port;
    const proxy = new FaultProxy(server, port, opts.maxLifetimeMs ?? 600_000);
    server.on('connection', (client) => proxy.accept(client, opts));
    return proxy;
  }

  /** `https://127.0.0.1:<port>`, for a kubeconfig's server field. */
  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  cutAll(): number {
    const n = this.pairs.size;
    for (const p of [...this.pairs]) this.close(p, true);
    this.stats.cuts += n;
    return n;
  }

  cutEvery(minMs: number, maxMs: number): void {
    this.stopCutting();
    const arm = (): void => {
      this.cutTimer = setTimeout(
        () => {
          this.cutAll();
          if (!this.stopped) arm();
        },
        minMs + Math.random() * (maxMs - minMs),
      );
      this.cutTimer.unref();
    };
    arm();
  }

  stopCutting(): void {
    if (this.cutTimer) clearTimeout(this.cutTimer);
    this.cutTimer = undefined;
  }

  resetMidStream(): void {
    for (const p of this.pairs) p.resetNextDown = true;
  }

  /** Half-open: the connections open now swallow every byte for `ms`. Returns how many. */
  stall(ms: number): number {
    const until = Date.now() + ms;
    for (const p of this.pairs) p.stalledUntil = until;
    this.stats.stalledConnections += this.pairs.size;
    return this.pairs.size;
  }

  latency(baseMs: number, jitterMs = 0): void {
    this.latencyBaseMs = baseMs;
    this.latencyJitterMs = jitterMs;
  }

  refuse(ms: number): void {
    this.refuseUntil = Date.now() + ms;
  }

  openConnections(): number {
    return this.pairs.size;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopCutting();
    clearTimeout(this.lifetimeTimer);
    for (const p of [...this.pairs]) this.close(p, true);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, opts: FaultProxyOptions): void {
    if (this.stopped || Date.now() < this.refuseUntil) {
      this.stats.refused++;
      client.resetAndDestroy();
      return;
    }
    this.stats.connections++;
    const upstream = net.connect(opts.targetPort, opts.targetHost);
    const pair: Pair = {
      client,
      upstream,
      stalledUntil: 0,
      resetNextDown: false,
      upChain: Promise.resolve(),
      downChain: Promise.resolve(),
    };
    this.pairs.add(pair);
    client.on('data', (chunk: Buffer) => this.forward(pair, 'up', chunk));
    upstream.on('data', (chunk: Buffer) => this.forward(pair, 'down', chunk));
    const end = (): void => this.close(pair, false);
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
      s.on('end', end);
    }
  }

  private forward(pair: Pair, dir: 'up' | 'down', chunk: Buffer): void {
    if (Date.now() < pair.stalledUntil) return; // swallowed, as a half-open link does
    const to = dir === 'up' ? pair.upstream : pair.client;
    if (dir === 'down' && pair.resetNextDown && chunk.length > 1) {
      pair.resetNextDown = false;
      this.stats.resets++;
      to.write(chunk.subarray(0, Math.floor(chunk.length / 2)), () => this.close(pair, true));
      return;
    }
    const delay = this.latencyBaseMs + Math.random() * this.latencyJitterMs;
    const send = (): void => {
      if (to.destroyed || Date.now() < pair.stalledUntil) return;
      if (dir === 'up') this.stats.bytesUp += chunk.length;
      else this.stats.bytesDown += chunk.length;
      to.write(chunk);
    };
    if (delay <= 0) {
      send();
      return;
    }
    const key = dir === 'up' ? 'upChain' : 'downChain';
    pair[key] = pair[key].then(() => new Promise<void>((r) => setTimeout(r, delay).unref())).then(send);
  }

  private close(pair: Pair, reset: boolean): void {
    if (!this.pairs.delete(pair)) return;
    for (const s of [pair.client, pair.upstream]) {
      if (reset && !s.destroyed) s.resetAndDestroy();
      else s.destroy();
    }
  }
}

/**
 * A FaultProxy in front of a control plane's apiserver, and a kubeconfig beside the control
 * plane's own (`DIR/proxied.kubeconfig`) whose server is the proxy: hand it to the process
 * under faults, keep the plain one for the test's own client.
 */
export async function proxyControlPlane(
  cp: { apiserverURL: string; kubeconfigPath: string; dir: string },
  opts: { maxLifetimeMs: number },
): Promise<{ proxy: FaultProxy; kubeconfig: string }> {
  const target = new URL(cp.apiserverURL);
  const proxy = await FaultProxy.start({
    targetHost: target.hostname,
    targetPort: Number(target.port),
    maxLifetimeMs: opts.maxLifetimeMs,
  });
  const kubeconfig = join(cp.dir, 'proxied.kubeconfig');
  writeFileSync(kubeconfig, readFileSync(cp.kubeconfigPath, 'utf8').replace(cp.apiserverURL, proxy.url), {
    mode: 0o600,
  });
  return { proxy, kubeconfig };
}
