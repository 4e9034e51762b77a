import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  findKubeConfigSource,
  KubeConfigNotFoundError,
  loadKubeConfig,
  serviceAccountDir,
  tokenFileOf,
} from './config.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-kcm-config-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function kubeconfigFile(name: string, server: string): string {
  const p = path.join(root, name);
  fs.writeFileSync(
    p,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: c, cluster: {server: "${server}"}}]`,
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
    ].join('\n'),
  );
  return p;
}

const explicit = kubeconfigFile('explicit', 'https://explicit:6443');
const fromEnv = kubeconfigFile('env', 'https://env:6443');
const home = path.join(root, 'home');
fs.mkdirSync(path.join(home, '.kube'), { recursive: true });
fs.copyFileSync(kubeconfigFile('home-src', 'https://home:6443'), path.join(home, '.kube', 'config'));
const saRoot = path.join(root, 'pod');
fs.mkdirSync(path.join(saRoot, serviceAccountDir), { recursive: true });
fs.writeFileSync(path.join(saRoot, serviceAccountDir, 'token'), 'sa-token');
fs.writeFileSync(path.join(saRoot, serviceAccountDir, 'ca.crt'), '');
const inCluster = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };

describe('findKubeConfigSource', () => {
  it('prefers explicit, then $KUBECONFIG, then in-cluster, then ~/.kube/config', () => {
    const env = { KUBECONFIG: fromEnv, ...inCluster };
    expect(
      findKubeConfigSource({ kubeconfig: explicit, env, homeDir: home, serviceAccountRoot: saRoot }),
    ).toEqual({ kind: 'explicit', paths: [explicit] });
    expect(findKubeConfigSource({ env, homeDir: home, serviceAccountRoot: saRoot })).toEqual({
      kind: 'env',
      paths: [fromEnv],
    });
    expect(findKubeConfigSource({ env: inCluster, homeDir: home, serviceAccountRoot: saRoot })).toEqual({
      kind: 'in-cluster',
      host: '10.0.0.1',
      port: '443',
      tokenFile: path.join(saRoot, serviceAccountDir, 'token'),
    });
    expect(findKubeConfigSource({ env: {}, homeDir: home, serviceAccountRoot: saRoot })).toEqual({
      kind: 'home',
      paths: [path.join(home, '.kube', 'config')],
    });
    expect(
      findKubeConfigSource({ env: {}, homeDir: path.join(root, 'nohome'), serviceAccountRoot: saRoot }),
    ).toBeUndefined();
  });

  it('skips $KUBECONFIG entries that do not exist', () => {
    const env = { KUBECONFIG: [path.join(root, 'missing'), fromEnv].join(path.delimiter) };
    expect(findKubeConfigSource({ env, homeDir: home })).toEqual({ kind: 'env', paths: [fromEnv] });
  });
});

describe('loadKubeConfig', () => {
  it('loads the chosen file', () => {
    expect(loadKubeConfig({ kubeconfig: explicit }).getCurrentCluster()?.server).toBe(
      'https://explicit:6443',
    );
    expect(loadKubeConfig({ env: { KUBECONFIG: fromEnv }, homeDir: home }).getCurrentCluster()?.server).toBe(
      'https://env:6443',
    );
  });

  it('builds the in-cluster config on the rotating token file', () => {
    const kc = loadKubeConfig({ env: inCluster, homeDir: home, serviceAccountRoot: saRoot });
    expect(kc.getCurrentCluster()?.server).toBe('https://10.0.0.1:443');
    expect(tokenFileOf(kc)).toBe(path.join(saRoot, serviceAccountDir, 'token'));
  });

  it('fails clearly when nothing is found or the explicit file is missing', () => {
    const none = () =>
      loadKubeConfig({ env: {}, homeDir: path.join(root, 'nohome'), serviceAccountRoot: saRoot });
    expect(none).toThrow(KubeConfigNotFoundError);
    expect(none).toThrow(
      'no kubeconfig: pass --kubeconfig, set KUBECONFIG, run in a pod with a service account, or create ~/.kube/config',
    );
    expect(() => loadKubeConfig({ kubeconfig: path.join(root, 'nope') })).toThrow(
      `kubeconfig ${path.join(root, 'nope')} does not exist`,
    );
  });
});

describe('kubeconfig tokenFile', () => {
  it('builds the user on the token file (relative to the kubeconfig), so it is re-read', () => {
    const dir = path.join(root, 'tokenfile');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'token'), 'from-file');
    const p = path.join(dir, 'config');
    fs.writeFileSync(
      p,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://tf:6443"}}]',
        'users: [{name: u, user: {tokenFile: token}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
      ].join('\n'),
    );
    expect(tokenFileOf(loadKubeConfig({ kubeconfig: p }))).toBe(path.join(dir, 'token'));
    const merged = loadKubeConfig({ env: { KUBECONFIG: [explicit, p].join(path.delimiter) }, homeDir: home });
    expect(tokenFileOf(merged)).toBeUndefined(); // the first file's context and user win
  });
});
