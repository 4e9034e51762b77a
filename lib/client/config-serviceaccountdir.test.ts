import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findKubeConfigSource, loadKubeConfig, SERVICE_ACCOUNT_DIR_ENV, tokenFileOf } from './config.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-kcm-sadir-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.writeFileSync(path.join(dir, 'token'), 'sa-token');
fs.writeFileSync(path.join(dir, 'ca.crt'), '');

describe(`$${SERVICE_ACCOUNT_DIR_ENV}`, () => {
  const env = {
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: '6443',
    [SERVICE_ACCOUNT_DIR_ENV]: dir,
  };

  it('moves the in-cluster token and CA to that directory', () => {
    const nohome = path.join(dir, 'nohome');
    expect(findKubeConfigSource({ env, homeDir: nohome })).toEqual({
      kind: 'in-cluster',
      host: '127.0.0.1',
      port: '6443',
      tokenFile: path.join(dir, 'token'),
    });
    const kc = loadKubeConfig({ env, homeDir: nohome });
    expect(kc.getCurrentCluster()).toMatchObject({
      server: 'https://127.0.0.1:6443',
      caFile: path.join(dir, 'ca.crt'),
      skipTLSVerify: false,
    });
    expect(tokenFileOf(kc)).toBe(path.join(dir, 'token'));
  });

  it('is not in-cluster when the directory has no token', () => {
    const empty = fs.mkdtempSync(path.join(dir, 'empty-'));
    const nohome = path.join(dir, 'nohome');
    expect(
      findKubeConfigSource({ env: { ...env, [SERVICE_ACCOUNT_DIR_ENV]: empty }, homeDir: nohome }),
    ).toBeUndefined();
  });
});
