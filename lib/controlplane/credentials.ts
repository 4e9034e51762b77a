/**
 * Throwaway credentials for a local control plane: an admin bearer token in group
 * system:masters (a static token file is the simplest credential the apiserver accepts)
 * and the RSA key pair that signs service-account tokens.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';

export const ADMIN_USER = 'ts-kcm-admin';

export function newToken(): string {
  return randomBytes(24).toString('hex');
}

/** --token-auth-file format: token,user,uid,"group1,group2". */
export function writeTokenFile(path: string, token: string): void {
  writeFileSync(path, `${token},${ADMIN_USER},${ADMIN_USER},"system:masters"\n`, { mode: 0o600 });
}

export function writeServiceAccountKeys(privatePath: string, publicPath: string): void {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  writeFileSync(privatePath, privateKey, { mode: 0o600 });
  writeFileSync(publicPath, publicKey);
}

export interface KubeconfigInput {
  server: string;
  token: string;
  /** PEM of the apiserver's self-signed serving certificate and its CA. */
  caPem: string;
  name?: string;
}

export function renderKubeconfig(input: KubeconfigInput): string {
  const name = input.name ?? 'ts-kcm-local';
  const ca = Buffer.from(input.caPem).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${input.server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    `- name: ${ADMIN_USER}`,
    '  user:',
    `    token: ${input.token}`,
    'contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    `    user: ${ADMIN_USER}`,
    `current-context: ${name}`,
    '',
  ].join('\n');
}
