/**
 * Start-up checks of a loaded kubeconfig, so that a credential that can never work is a
 * clear usage error at start (exit 2) rather than a controller-manager that retries 401s
 * forever: the context must name a cluster with a server, a token file must be readable,
 * and a client certificate must parse and be valid now. Only local facts are checked;
 * whether the apiserver accepts the credential is for the first request to find out.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type { KubeConfigLike as KubeConfig } from './kubeconfig.js';
import { tokenFileOf } from './config.js';

export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

/** Throws KubeConfigError naming what is wrong; returns quietly when nothing local is. */
export function checkKubeConfig(kc: KubeConfig, now: number = Date.now()): void {
  const context = kc.getCurrentContext();
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeConfigError(`context ${JSON.stringify(context)} names no cluster`);
  try {
    new URL(cluster.server);
  } catch {
    throw new KubeConfigError(
      `cluster ${JSON.stringify(cluster.name)} has no valid server URL (${JSON.stringify(cluster.server)})`,
    );
  }
  const tokenFile = tokenFileOf(kc);
  if (tokenFile) {
    try {
      if (fs.readFileSync(tokenFile, 'utf8').trim() === '') throw new Error('the file is empty');
    } catch (err) {
      throw new KubeConfigError(`token file ${tokenFile} cannot be used: ${(err as Error).message}`);
    }
  }
  const user = kc.getCurrentUser();
  const pem = readMaterial(user?.certData, user?.certFile, 'client certificate');
  if (pem === undefined) return;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new KubeConfigError(
      `client certificate of user ${JSON.stringify(user?.name)} does not parse: ${(err as Error).message}`,
    );
  }
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (now > to)
    throw new KubeConfigError(
      `client certificate of user ${JSON.stringify(user?.name)} (${cert.subject.replace(/\n/g, ', ')}) expired on ${new Date(to).toISOString()}`,
    );
  if (now < from)
    throw new KubeConfigError(
      `client certificate of user ${JSON.stringify(user?.name)} is not valid before ${new Date(from).toISOString()}`,
    );
}

function readMaterial(data: string | undefined, file: string | undefined, what: string): Buffer | undefined {
  if (data) return Buffer.from(data, 'base64');
  if (!file) return undefined;
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new KubeConfigError(`${what} file ${file} cannot be read: ${(err as Error).message}`);
  }
}
