/**
 * Client certificates rotate: a cert file replaced on disk is presented on the next
 * connection. The server is an https server on 127.0.0.1 that asks for a client certificate.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { KubeConfig } from '@kubernetes/client-node';
import { MemoryLogger } from '../log/index.js';
import { createKubeClient } from './client.js';
import { Resources } from './types.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-kcm-certs-'));
let server: https.Server;
let port = 0;
let servingCert = '';

/** A throwaway self-signed EC certificate (the test server accepts any client cert). */
function selfSigned(name: string, ...extra: string[]): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '1', ...extra,
  ], { stdio: 'ignore' }); // prettier-ignore
  return { cert, key };
}

beforeAll(async () => {
  const serving = selfSigned('server', '-addext', 'subjectAltName=IP:127.0.0.1');
  servingCert = serving.cert;
  server = https.createServer(
    {
      cert: fs.readFileSync(serving.cert),
      key: fs.readFileSync(serving.key),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ metadata: {}, items: [{ metadata: { name: String(peer.subject?.CN) } }] }));
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('client certificate files', () => {
  it('a cert rotated on disk is presented on the next connection', async () => {
    const first = selfSigned('first');
    const second = selfSigned('second');
    const certFile = path.join(dir, 'client.crt');
    const keyFile = path.join(dir, 'client.key');
    fs.copyFileSync(first.cert, certFile);
    fs.copyFileSync(first.key, keyFile);
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u', certFile, keyFile }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    const client = createKubeClient(kc, { qps: 0 });
    const presented = async () => (await client.resource(Resources.nodes).list()).items[0].metadata.name;
    try {
      expect(await presented()).toBe('first');
      expect(await presented()).toBe('first'); // kept-alive connection
      fs.copyFileSync(second.cert, certFile);
      fs.copyFileSync(second.key, keyFile);
      expect(await presented()).toBe('second');
    } finally {
      await client.close();
    }
  });

  it('reaches an https server through a CONNECT tunnel (proxy-url), client cert inside TLS', async () => {
    const creds = selfSigned('tunnelled');
    const tunnels: string[] = [];
    const proxy = http.createServer();
    proxy.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
      tunnels.push(req.url ?? '');
      const upstream = net.connect(port, '127.0.0.1', () => {
        socket.write('HTTP/1.1 200 OK\r\n\r\n');
        upstream.pipe(socket).pipe(upstream);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: 'c',
          server: `https://127.0.0.1:${port}`,
          skipTLSVerify: true,
          proxyUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
        },
      ],
      users: [{ name: 'u', certFile: creds.cert, keyFile: creds.key }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    const client = createKubeClient(kc, { qps: 0 });
    try {
      expect((await client.resource(Resources.nodes).list()).items[0].metadata.name).toBe('tunnelled');
      expect(tunnels).toEqual([`127.0.0.1:${port}`]);
    } finally {
      await client.close();
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

describe('TLS verification of the apiserver', () => {
  function kubeconfig(cluster: { caFile?: string; skipTLSVerify?: boolean }): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, skipTLSVerify: false, ...cluster }],
      users: [{ name: 'u', token: 'not-checked-here' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
      currentContext: 'ctx',
    });
    return kc;
  }

  async function list(kc: KubeConfig, logger: MemoryLogger): Promise<string> {
    const client = createKubeClient(kc, { qps: 0, logger, maxRetries: 0 });
    try {
      return String((await client.resource(Resources.nodes).list()).items[0]?.metadata.name);
    } finally {
      await client.close();
    }
  }

  it('is on by default: a certificate no CA vouches for is refused, without a word of warning', async () => {
    const logger = new MemoryLogger();
    await expect(list(kubeconfig({}), logger)).rejects.toThrow(/self[- ]signed certificate/);
    expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('accepts the certificate the kubeconfig CA vouches for', async () => {
    const logger = new MemoryLogger();
    expect(await list(kubeconfig({ caFile: servingCert }), logger)).toBe('undefined'); // no client cert: CN undefined
    expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('is off only with insecure-skip-tls-verify, which logs one warning for all clients of the kubeconfig', async () => {
    const logger = new MemoryLogger();
    const kc = kubeconfig({ skipTLSVerify: true });
    expect(await list(kc, logger)).toBe('undefined');
    await list(kc, logger); // a second client (the leader-election one) does not repeat it
    expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([
      {
        level: 'warn',
        v: 0,
        msg: 'TLS verification of the apiserver certificate is off: anyone on the network path can impersonate it',
        meta: { server: `127.0.0.1:${port}`, reason: 'insecure-skip-tls-verify is set in the kubeconfig' },
      },
    ]);
  });
});
