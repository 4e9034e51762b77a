import { describe, expect, test } from '@jest/globals';
import { createPrivateKey, createPublicKey, createSign, createVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderKubeconfig, writeServiceAccountKeys, writeTokenFile } from './credentials.js';

describe('credentials', () => {
  test('token file line puts the admin in system:masters', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-cred-'));
    try {
      writeTokenFile(join(dir, 't.csv'), 'abc123');
      expect(readFileSync(join(dir, 't.csv'), 'utf8')).toBe(
        'abc123,ts-kcm-admin,ts-kcm-admin,"system:masters"\n',
      );
      expect(statSync(join(dir, 't.csv')).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('service-account keys are a matching RSA pair in PEM', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-cred-'));
    try {
      writeServiceAccountKeys(join(dir, 'sa.key'), join(dir, 'sa.pub'));
      const priv = createPrivateKey(readFileSync(join(dir, 'sa.key')));
      const pub = createPublicKey(readFileSync(join(dir, 'sa.pub')));
      expect(priv.asymmetricKeyType).toBe('rsa');
      const signature = createSign('sha256').update('x').sign(priv);
      expect(createVerify('sha256').update('x').verify(pub, signature)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('kubeconfig carries server, CA data and token', () => {
    const text = renderKubeconfig({ server: 'https://127.0.0.1:6443', token: 'tok', caPem: 'PEM' });
    expect(text).toContain('    server: https://127.0.0.1:6443\n');
    expect(text).toContain(`    certificate-authority-data: ${Buffer.from('PEM').toString('base64')}\n`);
    expect(text).toContain('    token: tok\n');
    expect(text).toContain('current-context: ts-kcm-local\n');
  });
});
