import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { createKubeClient } from './client.js';
import { noProxyMatches, proxyFor } from './proxy.js';
import { Resources } from './types.js';

describe('proxyFor', () => {
  const env = {
    HTTPS_PROXY: 'proxy:3128',
    HTTP_PROXY: 'http://p80:8080',
    NO_PROXY: '.corp, 10.0.0.0/8,api:6443',
  };
  const pick = (url: string, e: NodeJS.ProcessEnv = env, proxyUrl?: string) =>
    proxyFor(new URL(url), proxyUrl, e)?.toString();
  it('uses HTTPS_PROXY for https and HTTP_PROXY for http, http:// when no scheme', () => {
    expect(pick('https://k8s.example:6443')).toBe('http://proxy:3128/');
    expect(pick('http://k8s.example:8080')).toBe('http://p80:8080/');
    expect(pick('https://k8s.example:6443', { https_proxy: 'http://lower:1' })).toBe('http://lower:1/');
  });
  it('never proxies loopback or NO_PROXY hosts', () => {
    for (const u of ['https://127.0.0.1:6443', 'https://[::1]:6443', 'https://localhost:6443'])
      expect(pick(u)).toBeUndefined();
    expect(pick('https://a.b.corp')).toBeUndefined();
    expect(pick('https://corp')).toBeUndefined();
    expect(pick('https://10.1.2.3')).toBeUndefined();
    expect(pick('https://api:6443')).toBeUndefined();
    expect(pick('https://api:443')).toBe('http://proxy:3128/');
    expect(pick('https://x', { ...env, NO_PROXY: '*' })).toBeUndefined();
  });
  it('proxy-url wins over the environment', () => {
    expect(pick('https://127.0.0.1:6443', {}, 'http://kc-proxy:1')).toBe('http://kc-proxy:1/');
  });
  it('matches NO_PROXY domains only on label boundaries', () => {
    expect(noProxyMatches('notcorp', '443', 'corp')).toBe(false);
  });
});

describe('proxy-url tunnel', () => {
  let target: http.Server;
  let proxy: http.Server;
  const connects: { url: string; auth?: string }[] = [];
  beforeAll(async () => {
    target = http.createServer((_req, res) => res.end(JSON.stringify({ metadata: {}, items: [] })));
    proxy = http.createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
      connects.push({ url: req.url ?? '', auth: req.headers['proxy-authorization'] });
      const [host, port] = (req.url ?? '').split(':');
      const upstream = net.connect(Number(port), host, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(socket).pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
    });
    for (const s of [target, proxy]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    for (const s of [target, proxy]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it('tunnels through the kubeconfig proxy-url with its credentials', async () => {
    const tport = (target.address() as AddressInfo).port;
    const pport = (proxy.address() as AddressInfo).port;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: 'c',
          server: `http://127.0.0.1:${tport}`,
          skipTLSVerify: true,
          proxyUrl: `http://user:pw@127.0.0.1:${pport}`,
        },
      ],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const client = createKubeClient(kc, { qps: 0 });
    try {
      await client.resource(Resources.nodes).list();
      expect(connects).toEqual([
        { url: `127.0.0.1:${tport}`, auth: `Basic ${Buffer.from('user:pw').toString('base64')}` },
      ]);
    } finally {
      await client.close();
    }
  });
});
