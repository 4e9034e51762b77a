import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import type https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { loadKubeConfig, tokenFileOf } from './config.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-kcm-kubeconfig-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function write(name: string, lines: string[]): string {
  const p = path.join(root, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, lines.join('\n'));
  return p;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('our kubeconfig parser', () => {
  it('resolves relative certificate paths against the kubeconfig folder and reads them per request', async () => {
    write('certs/ca.crt', ['CA-1']);
    write('certs/client.crt', ['CERT-1']);
    write('certs/client.key', ['KEY-1']);
    const p = write('certs/config', [
      'apiVersion: v1',
      'clusters: [{name: c, cluster: {server: "https://a:6443/", certificate-authority: ca.crt, tls-server-name: api.local}}]',
      'users: [{name: u, user: {client-certificate: client.crt, client-key: client.key, as: alice}}]',
      'contexts: [{name: x, context: {cluster: c, user: u, namespace: ns}}]',
      'current-context: x',
    ]);
    const kc = loadKubeConfig({ kubeconfig: p });
    expect(kc.getCurrentCluster()).toMatchObject({
      server: 'https://a:6443',
      caFile: path.join(root, 'certs/ca.crt'),
    });
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    expect(String(opts.ca)).toBe('CA-1');
    expect(String(opts.cert)).toBe('CERT-1');
    expect(String(opts.key)).toBe('KEY-1');
    expect(opts.servername).toBe('api.local');
    expect(opts.headers).toEqual({ 'Impersonate-User': 'alice' });
    fs.writeFileSync(path.join(root, 'certs/client.crt'), 'CERT-2'); // rotated on disk
    const again: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(again);
    expect(String(again.cert)).toBe('CERT-2');
  });

  it('inline data wins over files; token, basic auth and insecure-skip-tls-verify', async () => {
    const p = write('inline', [
      'apiVersion: v1',
      `clusters: [{name: c, cluster: {server: "https://b", certificate-authority-data: "${b64('CA')}", certificate-authority: /nonexistent, insecure-skip-tls-verify: true}}]`,
      `users: [{name: u, user: {token: tok, username: bob, password: pw, client-certificate-data: "${b64('C')}", client-key-data: "${b64('K')}"}}]`,
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
    ]);
    const opts: https.RequestOptions = {};
    await loadKubeConfig({ kubeconfig: p }).applyToHTTPSOptions(opts);
    expect([String(opts.ca), String(opts.cert), String(opts.key)]).toEqual(['CA', 'C', 'K']);
    expect(opts.rejectUnauthorized).toBe(false);
    expect(opts.headers).toEqual({ Authorization: 'Bearer tok' });
    expect(opts.auth).toBe('bob:pw');
  });

  it("kubectl's token-file is re-read as it rotates, like client-go's tokenFile (client-node read it once)", () => {
    write('tf/token', ['t1']);
    const p = write('tf/config', [
      'apiVersion: v1',
      'clusters: [{name: c, cluster: {server: "https://c"}}]',
      'users: [{name: u, user: {token-file: token}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
    ]);
    expect(tokenFileOf(loadKubeConfig({ kubeconfig: p }))).toBe(path.join(root, 'tf/token'));
  });

  it('a cluster without a server is an error naming it', () => {
    const p = write('noserver', [
      'apiVersion: v1',
      'clusters: [{name: c, cluster: {}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
    ]);
    expect(() => loadKubeConfig({ kubeconfig: p })).toThrow('cluster c has no server');
  });
});
