/**
 * Throwaway credentials for a local control plane: an admin bearer token in group
 * system:masters (a static token file is the simplest credential the apiserver accepts),
 * an admin client certificate from a client CA of its own (what a kind kubeconfig carries),
 * and the RSA key pair that signs service-account tokens.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { issueCertificate, type Subject } from '../pki/x509.js';

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

export interface ClientCertificateFiles {
  caFile: string;
  /** The CA's key stays beside it (as on a kind node) so tests can issue rotated certificates. */
  caKeyFile: string;
  certFile: string;
  keyFile: string;
}

export const CLIENT_CA_NAME = 'ts-kcm-local-client-ca';

const DAY_MS = 86_400_000;

/**
 * A client CA (10 years) and an admin certificate it signs (1 year) for user ADMIN_USER in
 * group system:masters, valid from an hour ago so a slightly slow clock still accepts it.
 */
export function writeClientCertificates(files: ClientCertificateFiles, now = new Date()): void {
  const notBefore = new Date(now.getTime() - 3_600_000);
  const ca = issueCertificate({
    subject: { commonName: CLIENT_CA_NAME },
    isCA: true,
    notBefore,
    notAfter: new Date(now.getTime() + 3650 * DAY_MS),
  });
  const admin = issueCertificate({
    subject: { commonName: ADMIN_USER, organizations: ['system:masters'] },
    issuer: ca,
    isCA: false,
    notBefore,
    notAfter: new Date(now.getTime() + 365 * DAY_MS),
  });
  writeFileSync(files.caFile, ca.certPem);
  writeFileSync(files.caKeyFile, ca.keyPem, { mode: 0o600 });
  writeFileSync(files.certFile, admin.certPem);
  writeFileSync(files.keyFile, admin.keyPem, { mode: 0o600 });
}

/** A client certificate from the local client CA (its key PEM from writeClientCertificates). */
export function issueClientCertificate(
  caKeyPem: string,
  subject: Subject,
  validity: { notBefore: Date; notAfter: Date },
): { certPem: string; keyPem: string } {
  const issuer = {
    certPem: '',
    keyPem: caKeyPem,
    key: createPrivateKey(caKeyPem),
    subject: { commonName: CLIENT_CA_NAME },
  };
  const cert = issueCertificate({ subject, issuer, isCA: false, ...validity });
  return { certPem: cert.certPem, keyPem: cert.keyPem };
}

export interface KubeconfigInput {
  server: string;
  /** A bearer token, or a client certificate and key (PEM) as kind writes them. */
  token?: string;
  clientCertPem?: string;
  clientKeyPem?: string;
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
    ...(input.token !== undefined
      ? [`    token: ${input.token}`]
      : [
          `    client-certificate-data: ${Buffer.from(input.clientCertPem ?? '').toString('base64')}`,
          `    client-key-data: ${Buffer.from(input.clientKeyPem ?? '').toString('base64')}`,
        ]),
    'contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    `    user: ${ADMIN_USER}`,
    `current-context: ${name}`,
    '',
  ].join('\n');
}
