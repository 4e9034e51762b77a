/**
 * HTTP proxies as Go's net/http picks them: the cluster's `proxy-url` if set, else
 * HTTPS_PROXY (https servers) or HTTP_PROXY (http servers) unless the host is loopback or
 * matches NO_PROXY. The apiserver is reached through a CONNECT tunnel, TLS inside it.
 */
import type * as http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { nodeHttp } from './node-http.js';

export function proxyFor(
  target: URL,
  proxyUrl: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): URL | undefined {
  if (proxyUrl) return parseProxy(proxyUrl);
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || isLoopback(host)) return undefined;
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  if (noProxyMatches(host, port, env.NO_PROXY ?? env.no_proxy ?? '')) return undefined;
  const value =
    target.protocol === 'https:' ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  return value ? parseProxy(value) : undefined;
}

function parseProxy(value: string): URL {
  const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new Error(`proxy scheme ${u.protocol} is not supported (http and https are)`);
  return u;
}

function isLoopback(host: string): boolean {
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || /^::ffff:127\./.test(host);
  return false;
}

/** NO_PROXY: comma-separated `*`, IPs, CIDRs and domains (a domain covers its subdomains), each with an optional port. */
export function noProxyMatches(host: string, port: string, noProxy: string): boolean {
  for (let entry of noProxy.split(',').map((e) => e.trim().toLowerCase())) {
    if (entry === '') continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      const [ip, bits] = entry.split('/');
      const family = net.isIPv6(ip) ? 'ipv6' : 'ipv4';
      if (!net.isIP(ip) || !net.isIP(host)) continue;
      const list = new net.BlockList();
      list.addSubnet(ip, Number(bits), family);
      if (list.check(host, net.isIPv6(host) ? 'ipv6' : 'ipv4')) return true;
      continue;
    }
    const m = /^(.*?)(?::(\d+))?$/.exec(entry.startsWith('[') ? entry.replace(/^\[(.*)\]/, '$1') : entry);
    let entryPort: string | undefined;
    if (m && !net.isIPv6(entry)) [entry, entryPort] = [m[1], m[2]];
    if (entryPort && entryPort !== port) continue;
    if (net.isIP(entry)) {
      if (entry === host) return true;
      continue;
    }
    const domain = entry.replace(/^\*?\./, '');
    if (host === domain || host.endsWith(`.${domain}`)) return true;
  }
  return false;
}

type ConnectCallback = (err: Error | null, socket?: net.Socket) => void;
type AgentCallback = (err: Error | null, stream: Duplex) => void;

/** Opens a CONNECT tunnel to host:port through the proxy; the proxy's credentials go only in Proxy-Authorization. */
function openTunnel(proxy: URL, host: string, port: number, cb: ConnectCallback): void {
  const proxyPort = Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80));
  const socket =
    proxy.protocol === 'https:'
      ? tls.connect({ host: proxy.hostname, port: proxyPort, servername: proxy.hostname })
      : net.connect({ host: proxy.hostname, port: proxyPort });
  const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`];
  if (proxy.username)
    lines.push(
      `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`,
    );
  const where = `proxy ${proxy.protocol}//${proxy.host}`; // no credentials in messages
  let head = Buffer.alloc(0);
  const fail = (err: Error) => {
    socket.destroy();
    cb(new Error(`${where}: ${err.message}`));
  };
  const onData = (data: Buffer) => {
    head = Buffer.concat([head, data]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    socket.off('data', onData);
    socket.off('error', fail);
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString('latin1'));
    if (!status || status[1] !== '200')
      return fail(new Error(`CONNECT ${authority} answered ${status?.[1] ?? 'garbage'}`));
    const rest = head.subarray(end + 4);
    if (rest.length) socket.unshift(rest);
    cb(null, socket);
  };
  socket.on('data', onData);
  socket.on('error', fail);
  socket.write(lines.join('\r\n') + '\r\n\r\n');
}

type AgentOptions = http.AgentOptions & tls.ConnectionOptions;

/** An https agent whose connections run through a CONNECT tunnel. */
export class TunnelingHttpsAgent extends https.Agent {
  constructor(
    private readonly proxy: URL,
    opts: https.AgentOptions,
  ) {
    super(opts);
  }

  override createConnection(args: http.ClientRequestArgs, done?: AgentCallback): undefined {
    const options = args as AgentOptions;
    const cb = done as unknown as ConnectCallback;
    const host = options.host ?? 'localhost';
    openTunnel(this.proxy, host, Number(options.port ?? 443), (err, raw) => {
      if (err || !raw) return cb(err ?? new Error('no tunnel'));
      const servername = options.servername ?? (net.isIP(host) ? undefined : host);
      const secure = tls.connect({ ...options, socket: raw, ...(servername ? { servername } : {}) });
      secure.once('secureConnect', () => cb(null, secure));
      secure.once('error', (e) => cb(e));
    });
    return undefined;
  }
}

/** A plain http agent through a CONNECT tunnel (Go forwards such requests instead). */
export class TunnelingHttpAgent extends nodeHttp.Agent {
  constructor(
    private readonly proxy: URL,
    opts: http.AgentOptions,
  ) {
    super(opts);
  }

  override createConnection(args: http.ClientRequestArgs, done?: AgentCallback): undefined {
    const options = args as AgentOptions;
    const cb = done as unknown as ConnectCallback;
    openTunnel(this.proxy, options.host ?? 'localhost', Number(options.port ?? 80), cb);
    return undefined;
  }
}
